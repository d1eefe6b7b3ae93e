"""Token pruning / merging for ViTs: exactness at rate 0, token counts, honest reports."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from snt_search.compression.tokens import bipartite_merge
from snt_search.registry import Registry
from snt_search.specs import CompressionContext, PluginError

from .conftest import IMG, get_compressor, tiny_vit

NO_OP = {"token_prune": {"keep_rate": 1.0}, "token_merge": {"merge_rate": 0.0}}
FAST = {"timing_runs": 2}


def _labelled_context(model: nn.Module, n: int = 2) -> CompressionContext:
    """Calibration batches labelled by the model itself: accuracy before is exactly 1."""
    gen = torch.Generator().manual_seed(3)
    data = []
    for _ in range(n):
        x = torch.randn(8, 3, IMG, IMG, generator=gen)
        with torch.no_grad():
            data.append((x, model(x).argmax(1)))
    return CompressionContext(calibration=data)


@pytest.mark.parametrize("name", sorted(NO_OP))
def test_token_compressors_run_on_vit_and_refuse_other_families(
    registry: Registry, backbone: nn.Module, name: str
) -> None:
    compressor = get_compressor(registry, name)
    if "VisionTransformer" not in type(backbone).__name__:
        with pytest.raises(PluginError, match="needs a timm VisionTransformer"):
            compressor.compress(backbone, CompressionContext(), **FAST)
        return
    ctx = _labelled_context(backbone)
    report = compressor.compress(backbone, ctx, **FAST)
    assert report.metrics["final_tokens"] < 17  # 16 patches + CLS at the start
    assert report.metrics["speedup"] > 0 and math.isfinite(report.metrics["speedup"])
    assert backbone(torch.randn(2, 3, IMG, IMG)).isfinite().all()


@pytest.mark.parametrize("name", sorted(NO_OP))
def test_rate_zero_reproduces_timm_exactly(registry: Registry, name: str) -> None:
    """Checks our explicit attention (and the size bias at size 1) against timm's forward."""
    torch.manual_seed(0)
    model = tiny_vit().eval()
    x = torch.randn(4, 3, IMG, IMG)
    with torch.no_grad():
        expected = model(x)
    report = get_compressor(registry, name).compress(
        model, _labelled_context(model), **NO_OP[name], **FAST
    )
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)
    assert report.metrics["accuracy_drop"] == 0.0
    assert report.metrics["mean_token_ratio"] == 1.0


def test_token_prune_keeps_the_asked_fraction(registry: Registry) -> None:
    model = tiny_vit().eval()
    report = get_compressor(registry, "token_prune").compress(
        model, _labelled_context(model), keep_rate=0.5, blocks="0", **FAST
    )
    assert report.metrics["final_tokens"] == 1 + 8  # CLS + half of 16 patches


def test_token_merge_removes_r_tokens_per_block(registry: Registry) -> None:
    model = tiny_vit().eval()
    report = get_compressor(registry, "token_merge").compress(
        model, _labelled_context(model), merge_rate=0.25, **FAST
    )
    assert report.metrics["merged_per_block"] == 4
    assert report.metrics["final_tokens"] == 17 - 2 * 4  # depth 2


def test_reported_accuracy_drop_is_measured(registry: Registry) -> None:
    model = tiny_vit().eval()
    ctx = _labelled_context(model, n=3)
    report = get_compressor(registry, "token_prune").compress(
        model, ctx, keep_rate=0.25, calibration_batches=3, **FAST
    )
    with torch.no_grad():
        hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in ctx.calibration)
    assert report.metrics["calibration_accuracy_before"] == 1.0
    assert report.metrics["calibration_accuracy_after"] == pytest.approx(hits / 24)
    assert report.metrics["accuracy_drop"] == pytest.approx(1.0 - hits / 24)


@pytest.mark.parametrize("name", sorted(NO_OP))
def test_compressing_twice_reconfigures_instead_of_stacking(registry: Registry, name: str) -> None:
    model = tiny_vit().eval()
    keys = set(model.state_dict())
    ctx = _labelled_context(model)
    compressor = get_compressor(registry, name)
    first = compressor.compress(model, ctx, **FAST)
    second = compressor.compress(model, ctx, **FAST)
    assert second.metrics["final_tokens"] == first.metrics["final_tokens"]
    assert second.metrics["accuracy_drop"] == 0.0  # relative to the model as handed in
    assert set(model.state_dict()) == keys
    assert len(model._forward_pre_hooks) == 1
    twin = copy.deepcopy(model)
    x = ctx.calibration[0][0]
    with torch.no_grad():
        assert torch.allclose(twin(x), model(x))


def test_bipartite_merge_preserves_mass_and_merges_duplicates() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1 + 8, 4)
    x[:, 3] = x[:, 4]  # patch tokens 2 (set A) and 3 (set B) are identical
    size = torch.ones(2, 9, 1)
    merged, new_size = bipartite_merge(x, size, keys=x.clone(), r=1, prefix=1)
    assert merged.shape == (2, 8, 4)
    assert torch.equal(merged[:, 0], x[:, 0])  # CLS untouched
    assert new_size.sum() == size.sum()
    assert torch.allclose((merged * new_size).sum(1), (x * size).sum(1), atol=1e-5)
    assert int((new_size == 2).sum()) == 2  # one merged pair per image: the duplicates


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("token_prune", {"keep_rate": 0.0}, r"'keep_rate' must lie in \(0, 1\]"),
        ("token_prune", {"blocks": "7"}, "blocks must be 'auto'"),
        ("token_merge", {"merge_rate": 0.9}, r"'merge_rate' must lie in \[0, 0.5\]"),
    ],
)
def test_bad_token_requests_are_explained(
    registry: Registry, name: str, params: dict[str, object], match: str
) -> None:
    model = tiny_vit()
    with pytest.raises(PluginError, match=match):
        get_compressor(registry, name).compress(model, _labelled_context(model), **params)


def test_token_compression_needs_calibration_data(registry: Registry) -> None:
    with pytest.raises(PluginError, match="has none"):
        get_compressor(registry, "token_merge").compress(tiny_vit(), CompressionContext())
