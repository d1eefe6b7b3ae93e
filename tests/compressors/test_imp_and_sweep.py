"""Iterative magnitude pruning, the sparsity schedules and the Fig. 5 sweep helper."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from snt_search.compression import (
    FIG5_SPARSITIES,
    measure_sparsity,
    prunable_weights,
    sparsity_schedule,
    sweep,
)
from snt_search.registry import Registry
from snt_search.specs import CompressionContext, PluginError

from .conftest import batches, get_compressor, sgd_finetune, tiny_mlp


@pytest.mark.parametrize("schedule", ["exponential", "cubic"])
def test_schedules_are_monotone_and_end_at_target(schedule: str) -> None:
    values = sparsity_schedule(0.8, 5, schedule)
    assert values[-1] == 0.8
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert values[0] > 0.0


def test_exponential_removes_a_constant_fraction_of_the_survivors() -> None:
    values = [0.0, *sparsity_schedule(0.75, 2, "exponential")]
    kept = [1 - v for v in values]
    assert kept[1] / kept[0] == pytest.approx(kept[2] / kept[1])
    assert values[1] == pytest.approx(0.5)


def test_cubic_prunes_fast_first() -> None:
    values = [0.0, *sparsity_schedule(0.8, 4, "cubic")]
    deltas = [b - a for a, b in zip(values, values[1:], strict=False)]
    assert deltas == sorted(deltas, reverse=True)


@pytest.mark.parametrize("schedule", ["exponential", "cubic"])
def test_imp_reaches_target_with_masks_kept_while_finetuning(
    registry: Registry, backbone: nn.Module, schedule: str
) -> None:
    calib = batches(1)
    train = sgd_finetune(calib)
    seen: list[float] = []

    def finetune(model: nn.Module, epochs: int) -> None:
        before = measure_sparsity(model, prunable_weights(model))["sparsity"]
        train(model, epochs)
        after = measure_sparsity(model, prunable_weights(model))["sparsity"]
        assert after >= before - 1e-9, "fine-tuning revived pruned weights"
        seen.append(after)

    ctx = CompressionContext(calibration=calib, finetune=finetune)
    report = get_compressor(registry, "imp").compress(
        backbone, ctx, sparsity=0.6, steps=3, schedule=schedule
    )
    assert len(seen) == 3
    assert seen == sorted(seen)
    assert seen[-1] == pytest.approx(0.6, abs=2e-3)
    assert report.metrics["sparsity"] == pytest.approx(0.6, abs=2e-3)
    assert not any(k.endswith(("_orig", "_mask")) for k in backbone.state_dict())
    assert backbone(calib[0][0]).isfinite().all()


def test_imp_twice_counts_existing_zeros(registry: Registry, context: CompressionContext) -> None:
    model = tiny_mlp()
    imp = get_compressor(registry, "imp")
    imp.compress(model, context, sparsity=0.5, steps=2)
    report = imp.compress(model, context, sparsity=0.5, steps=2)
    assert report.metrics["sparsity"] == pytest.approx(0.5, abs=2e-3)


def test_imp_without_finetune_is_a_clear_error(registry: Registry) -> None:
    with pytest.raises(PluginError, match="finetune=None"):
        get_compressor(registry, "imp").compress(tiny_mlp(), CompressionContext())


def test_imp_rejects_unknown_schedule(registry: Registry, context: CompressionContext) -> None:
    with pytest.raises(PluginError, match="schedule must be one of"):
        get_compressor(registry, "imp").compress(tiny_mlp(), context, schedule="linear")


def test_sweep_records_fig5_curve_and_leaves_model_untouched(
    registry: Registry, context: CompressionContext
) -> None:
    torch.manual_seed(0)
    model = tiny_mlp().eval()
    original = copy.deepcopy(model.state_dict())
    x, _ = batches(1, 64)[0]
    with torch.no_grad():
        labels = model(x).argmax(1)

    def evaluate(m: nn.Module) -> float:
        with torch.no_grad():
            return float((m(x).argmax(1) == labels).float().mean())

    result = sweep(model, get_compressor(registry, "magnitude_prune"), context, evaluate)
    assert len(result.sparsities) == len(FIG5_SPARSITIES) == 10
    assert result.sparsities == pytest.approx(FIG5_SPARSITIES, abs=2e-3)
    assert result.accuracies[0] == 1.0  # unpruned model agrees with itself
    assert result.accuracies[-1] < 1.0  # 90% one-shot pruning changes predictions
    xs, ys = result.sparsities, result.accuracies
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(9))
    assert result.auc == pytest.approx(area)
    assert 0.0 < result.mean_accuracy <= 1.0
    for key, value in model.state_dict().items():
        assert torch.equal(value, original[key])


def test_sweep_needs_a_pruning_compressor(registry: Registry, context: CompressionContext) -> None:
    class NoSparsity(type(get_compressor(registry, "magnitude_prune"))):  # type: ignore[misc]
        defaults = {"scope": "global"}

    with pytest.raises(PluginError, match="needs a compressor with a 'sparsity'"):
        sweep(tiny_mlp(), NoSparsity(), context, lambda m: 0.0)
