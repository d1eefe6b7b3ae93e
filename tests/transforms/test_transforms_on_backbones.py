"""Every registered backbone x every registered transform: build, run, count, save, load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from backbones.tiny import IMAGE_SIZE, NOT_APPLICABLE, NUM_CLASSES, tiny
from safetensors.torch import load_model, save_model
from torch import nn

from snt_search.layers import LBiasPReLU
from snt_search.registry import get_registry
from snt_search.specs import Backbone, Transform, TransformNotApplicable

REG = get_registry()
BACKBONES = REG.names("backbone")
TRANSFORMS = REG.names("transform")
PAIRS = [(b, t) for b in BACKBONES for t in TRANSFORMS]


def _build(backbone: str, seed: int = 0) -> nn.Module:
    plugin = REG.get("backbone", backbone)
    assert isinstance(plugin, Backbone)
    torch.manual_seed(seed)
    return plugin.build(
        num_classes=NUM_CLASSES, image_size=IMAGE_SIZE, in_chans=3, **tiny(backbone)
    )


def _transform(name: str) -> Transform:
    plugin = REG.get("transform", name)
    assert isinstance(plugin, Transform)
    return plugin


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_tables_rows_are_registered() -> None:
    assert {"none", "preact", "lbias_prelu", "snt"} <= set(TRANSFORMS)  # Table 4 rows


@pytest.mark.filterwarnings("ignore:snt. .* has no residual block")
@pytest.mark.parametrize(("backbone", "transform"), PAIRS)
def test_transform_builds_runs_and_adds_only_eq1_params(backbone: str, transform: str) -> None:
    model = _build(backbone)
    before = _count(model)
    if (backbone, transform) in NOT_APPLICABLE:
        with pytest.raises(TransformNotApplicable, match=type(model).__name__):
            _transform(transform).apply(model)
        return
    report = _transform(transform).apply(model)

    eq1 = sum(3 * m.num_channels for m in model.modules() if isinstance(m, LBiasPReLU))
    assert _count(model) - before == report.added_params == eq1
    if transform in ("none", "preact"):
        assert report.added_params == 0
    else:
        assert eq1 > 0 and sum(v for k, v in report.replaced.items() if "LBiasPReLU" in k) > 0

    x = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    out = model(x)
    assert out.shape == (2, NUM_CLASSES)
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.filterwarnings("ignore:snt. .* has no residual block")
@pytest.mark.parametrize("backbone", BACKBONES)
def test_snt_model_round_trips_through_safetensors(backbone: str, tmp_path: Path) -> None:
    model = _build(backbone, seed=1)
    _transform("snt").apply(model)
    with torch.no_grad():  # move Eq. 1 parameters off their init so the check means something
        for m in model.modules():
            if isinstance(m, LBiasPReLU):
                m.gamma.uniform_(-0.1, 0.1)
                m.zeta.uniform_(-0.1, 0.1)
    model.eval()
    save_model(model, str(tmp_path / "m.safetensors"))
    fresh = _build(backbone, seed=2)
    _transform("snt").apply(fresh)
    fresh.eval()
    missing, unexpected = load_model(fresh, str(tmp_path / "m.safetensors"))
    assert not missing and not unexpected
    x = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    torch.testing.assert_close(fresh(x), model(x))


@pytest.mark.filterwarnings("ignore:snt. .* has no residual block")
@pytest.mark.parametrize("backbone", BACKBONES)
def test_snt_model_trains(backbone: str) -> None:
    model = _build(backbone, seed=3)
    _transform("snt").apply(model)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    y = torch.randint(0, NUM_CLASSES, (8,), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
