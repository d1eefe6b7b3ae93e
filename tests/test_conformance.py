"""Every registered built-in plugin passes the conformance checks third parties use."""

from __future__ import annotations

import pytest

from snt_search.registry import Registry
from snt_search.specs import DataRequest
from snt_search.testing import check_plugin

REGISTRY = Registry.discover(autoload=False)
# Small sizes so every built-in checks in seconds; datasets that need files are tested in
# test_datasets.py on data the tests make.
PARAMS = {
    ("backbone", "mixer_s"): {"num_blocks": 1, "embed_dim": 16},
}
NEEDS_FILES = {("dataset", "cifar10"), ("dataset", "cifar100"), ("dataset", "imagefolder")}
CHECKED = [r for r in REGISTRY if r.ok and (r.kind, r.name) not in NEEDS_FILES]


@pytest.mark.parametrize("record", CHECKED, ids=lambda r: f"{r.kind}:{r.name}")
def test_builtin_plugin_conforms(record) -> None:  # type: ignore[no-untyped-def]
    plugin = REGISTRY.get(record.kind, record.name)
    kwargs = {"request": DataRequest(download=False)} if record.kind == "dataset" else {}
    check_plugin(plugin, params=PARAMS.get((record.kind, record.name)), **kwargs)


RESIDUAL = """
from torch import nn
from snt_search.specs import Backbone


class _Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv, self.act = nn.Conv2d(width, width, 3, padding=1), nn.ReLU()

    def forward(self, x):
        return self.act(x + self.conv(x))


class Own(Backbone):
    '''A residual CNN of the author's own block class.'''
    defaults = {"width": 8}

    def build(self, *, num_classes, image_size, in_chans, **params):
        p = self.resolve_params(params)
        return nn.Sequential(
            nn.Conv2d(in_chans, p["width"], 3, padding=1), nn.ReLU(), _Block(p["width"]),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(p["width"], num_classes),
        )
"""


@pytest.fixture
def own_backbone(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    (tmp_path / "own_backbone.py").write_text(RESIDUAL)
    monkeypatch.syspath_prepend(str(tmp_path))
    import own_backbone

    return own_backbone.Own


def test_with_a_backbone_a_transform_runs_on_it_and_must_not_refuse_it(own_backbone) -> None:  # type: ignore[no-untyped-def]
    """preact passes on the reference models alone (it rewrites the Mixer) but refuses the
    author's own residual blocks, which backbone= makes a failure naming the refusal."""
    preact = REGISTRY.get("transform", "preact")
    check_plugin(preact)
    with pytest.raises(AssertionError, match=r"preact refused the backbone Own: .*ResNet"):
        check_plugin(preact, backbone=own_backbone)
    lbias = REGISTRY.get("transform", "lbias_prelu")
    applied: list[int] = []
    original = lbias.apply

    def counting(model, **params):  # type: ignore[no-untyped-def]
        applied.append(len(list(model.modules())))
        return original(model, **params)

    lbias.apply = counting  # type: ignore[method-assign]
    check_plugin(lbias, backbone=own_backbone, backbone_params={"width": 4})
    assert len(applied) == 3  # the author's model first, then the two reference models


def test_with_a_backbone_a_compressor_runs_on_it_and_must_not_refuse_it(own_backbone) -> None:  # type: ignore[no-untyped-def]
    check_plugin(REGISTRY.get("compressor", "magnitude_prune"), backbone=own_backbone)
    merge = REGISTRY.get("compressor", "token_merge")
    check_plugin(merge)  # a ViT-only compressor passes on the reference ViT ...
    with pytest.raises(AssertionError, match="token_merge refused the backbone Own: "):
        check_plugin(merge, backbone=own_backbone)  # ... and fails on a CNN the author named


def test_backbone_is_refused_for_other_kinds(own_backbone) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        AssertionError, match="backbone= is for checking a transform or a compressor"
    ):
        check_plugin(REGISTRY.get("optimizer", "adam"), backbone=own_backbone)
