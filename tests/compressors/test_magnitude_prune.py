"""One-shot magnitude pruning: measured sparsity, scopes, layer policy, pruning twice."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn

from snt_search.compression import prunable_weights
from snt_search.registry import Registry
from snt_search.specs import CompressionContext, PluginError

from .conftest import IMG, get_compressor, tiny_mlp


def _zeros(module: nn.Module) -> float:
    w = module.weight  # type: ignore[union-attr]
    return float((w == 0).float().mean())


def _counted_sparsity(model: nn.Module) -> float:
    """Independent recount over every Linear/Conv weight (not using the plugin's helper)."""
    zeros = total = 0
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            zeros += int((m.weight == 0).sum())
            total += m.weight.numel()
    return zeros / total


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_global_sparsity_is_what_was_asked(
    registry: Registry, backbone: nn.Module, context: CompressionContext, sparsity: float
) -> None:
    report = get_compressor(registry, "magnitude_prune").compress(
        backbone, context, sparsity=sparsity
    )
    measured = _counted_sparsity(backbone)
    assert report.metrics["sparsity"] == pytest.approx(measured)
    assert measured == pytest.approx(sparsity, abs=2e-3)
    assert report.metrics["target_sparsity"] == sparsity
    every = torch.cat([p.detach().flatten() for p in backbone.parameters()])
    assert report.metrics["sparsity_all"] == pytest.approx(float((every == 0).float().mean()))
    assert backbone(torch.randn(2, 3, IMG, IMG)).isfinite().all()


def test_mask_is_permanent_and_state_dict_plain(
    registry: Registry, backbone: nn.Module, context: CompressionContext
) -> None:
    get_compressor(registry, "magnitude_prune").compress(backbone, context)
    keys = backbone.state_dict().keys()
    assert not any(k.endswith(("_orig", "_mask")) for k in keys)
    assert not any(m._forward_pre_hooks for m in backbone.modules())
    buf = io.BytesIO()
    torch.save(backbone.state_dict(), buf)
    buf.seek(0)
    assert _counted_sparsity(backbone) == pytest.approx(0.5, abs=2e-3)


def test_layer_scope_prunes_every_layer_to_target(
    registry: Registry, backbone: nn.Module, context: CompressionContext
) -> None:
    get_compressor(registry, "magnitude_prune").compress(
        backbone, context, sparsity=0.6, scope="layer"
    )
    for module, _ in prunable_weights(backbone):
        assert _zeros(module) == pytest.approx(0.6, abs=0.5 / module.weight.numel() + 1e-6)  # type: ignore[operator]


def test_global_scope_keeps_the_largest_weights(
    registry: Registry, context: CompressionContext
) -> None:
    model = tiny_mlp()
    magnitudes = torch.cat([m.weight.detach().abs().flatten() for m, _ in prunable_weights(model)])
    threshold = magnitudes.kthvalue(int(0.5 * magnitudes.numel())).values
    get_compressor(registry, "magnitude_prune").compress(model, context, sparsity=0.5)
    for module, _ in prunable_weights(model):
        kept = module.weight[module.weight != 0].abs()  # type: ignore[index]
        assert bool((kept >= threshold).all())


def test_skip_first_last_leaves_them_dense(
    registry: Registry, backbone: nn.Module, context: CompressionContext
) -> None:
    everything = prunable_weights(backbone)
    report = get_compressor(registry, "magnitude_prune").compress(
        backbone, context, sparsity=0.5, skip_first_last=True
    )
    assert _zeros(everything[0][0]) == 0.0
    assert _zeros(everything[-1][0]) == 0.0
    assert report.metrics["pruned_tensors"] == len(everything) - 2
    assert report.metrics["sparsity"] == pytest.approx(0.5, abs=2e-3)


def test_pruning_twice_counts_existing_zeros(
    registry: Registry, backbone: nn.Module, context: CompressionContext
) -> None:
    prune = get_compressor(registry, "magnitude_prune")
    prune.compress(backbone, context, sparsity=0.5)
    again = prune.compress(backbone, context, sparsity=0.5)
    assert again.metrics["sparsity"] == pytest.approx(0.5, abs=2e-3)  # not 0.75
    more = prune.compress(backbone, context, sparsity=0.7)
    assert more.metrics["sparsity"] == pytest.approx(0.7, abs=2e-3)
    assert _counted_sparsity(backbone) == pytest.approx(0.7, abs=2e-3)


def test_pruning_below_existing_sparsity_warns_and_reports_truth(
    registry: Registry, context: CompressionContext
) -> None:
    model = tiny_mlp()
    prune = get_compressor(registry, "magnitude_prune")
    prune.compress(model, context, sparsity=0.8)
    with pytest.warns(UserWarning, match="already 0.8"):
        report = prune.compress(model, context, sparsity=0.3)
    assert report.metrics["sparsity"] == pytest.approx(0.8, abs=2e-3)


def test_live_torch_prune_masks_are_not_compounded(
    registry: Registry, context: CompressionContext
) -> None:
    """A model carrying live torch prune masks (e.g. mid-IMP) is pruned to the absolute target."""
    model = tiny_mlp()
    torch.nn.utils.prune.global_unstructured(
        prunable_weights(model), pruning_method=torch.nn.utils.prune.L1Unstructured, amount=0.5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = get_compressor(registry, "magnitude_prune").compress(model, context, sparsity=0.5)
    assert report.metrics["sparsity"] == pytest.approx(0.5, abs=2e-3)
    assert "0.weight_orig" not in model.state_dict() and "1.weight_orig" not in model.state_dict()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"sparsity": 1.0}, r"'sparsity' must lie in \[0, 1\), got 1.0"),
        ({"sparsity": -0.1}, r"'sparsity' must lie in \[0, 1\), got -0.1"),
        ({"scope": "channel"}, "scope must be one of"),
        ({"amount": 0.5}, "has no parameter 'amount'"),
    ],
)
def test_bad_parameters_are_explained(
    registry: Registry, context: CompressionContext, params: dict[str, object], match: str
) -> None:
    with pytest.raises(PluginError, match=match):
        get_compressor(registry, "magnitude_prune").compress(tiny_mlp(), context, **params)


def test_model_without_prunable_layers_is_an_error(
    registry: Registry, context: CompressionContext
) -> None:
    with pytest.raises(PluginError, match="needs Linear or Conv layers"):
        get_compressor(registry, "magnitude_prune").compress(nn.ReLU(), context)
