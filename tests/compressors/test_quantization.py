"""Simulated quantization: measured bit widths, W8A8 vs W2 on a trained model, two-sided PACT."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from snt_search.compression import prunable_weights
from snt_search.compression.pact import TwoSidedPACT
from snt_search.compression.quant import input_quantizers
from snt_search.registry import Registry
from snt_search.specs import CompressionContext, PluginError

from .conftest import IMG, get_compressor, tiny_mlp

SETTINGS: dict[str, tuple[str, dict[str, object]]] = {
    "ptq_w4": ("ptq", {"weight_bits": 4}),
    "ptq_w8a8": ("ptq", {"weight_bits": 8, "activation_bits": 8, "finetune_epochs": 0}),
    "ptq_w4a4_tensor": (
        "ptq",
        {"weight_bits": 4, "activation_bits": 4, "weight_granularity": "tensor"},
    ),
    "qat_w4a4": ("qat", {}),
}


def _levels(w: torch.Tensor, per_channel: bool) -> int:
    groups = w.flatten(1) if per_channel else w.reshape(1, -1)
    return max(int(torch.unique(g).numel()) for g in groups)


def _on_symmetric_grid(w: torch.Tensor, bits: int, per_channel: bool) -> bool:
    """Every group is an integer multiple of max|w| / (2^(bits-1) - 1): an independent check."""
    groups = w.flatten(1) if per_channel else w.reshape(1, -1)
    qmax = 2 ** (bits - 1) - 1
    steps = groups / (groups.abs().amax(1, keepdim=True).clamp_min(1e-12) / qmax)
    return bool(torch.allclose(steps, steps.round(), atol=1e-3))


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_quantized_model_runs_at_the_asked_bit_width(
    registry: Registry, backbone: nn.Module, context: CompressionContext, setting: str
) -> None:
    name, params = SETTINGS[setting]
    compressor = get_compressor(registry, name)
    asked = compressor.resolve_params(params)
    targets = prunable_weights(backbone, skip_first_last=bool(asked["skip_first_last"]))
    per_channel = asked["weight_granularity"] == "channel"
    wbits = int(asked["weight_bits"])
    assert not all(_on_symmetric_grid(m.weight.detach(), wbits, per_channel) for m, _ in targets)  # type: ignore[operator]
    report = compressor.compress(backbone, context, **params)
    for module, _ in targets:
        weight = module.weight.detach()  # type: ignore[operator]
        assert _on_symmetric_grid(weight, wbits, per_channel)
        assert _levels(weight, per_channel) <= 2**wbits - 1
    assert report.metrics["weight_bits"] <= wbits
    assert report.metrics["quantized_layers"] == len(targets)
    assert not any("parametrizations" in k for k in backbone.state_dict())
    abits = int(asked["activation_bits"])
    if abits:
        assert len(input_quantizers(backbone)) == len(targets)
        assert report.metrics["activation_bits"] <= abits
    else:
        assert report.metrics["activation_bits"] == 32.0
        assert input_quantizers(backbone) == []
    out = backbone(torch.randn(2, 3, IMG, IMG))
    assert out.isfinite().all()
    twin = copy.deepcopy(backbone)  # the pipeline copies models; hooks must follow
    assert torch.allclose(twin(context.calibration[0][0]), backbone(context.calibration[0][0]))


@pytest.mark.parametrize("setting", ["ptq_w8a8", "ptq_w4a4_tensor"])
def test_quantizing_twice_replaces_instead_of_stacking(
    registry: Registry, context: CompressionContext, setting: str
) -> None:
    name, params = SETTINGS[setting]
    model = tiny_mlp().eval()
    compressor = get_compressor(registry, name)
    compressor.compress(model, context, **params)
    x = context.calibration[0][0]
    with torch.no_grad():
        first = model(x)
    compressor.compress(model, context, **{**params, "finetune_epochs": 0})
    with torch.no_grad():
        assert torch.allclose(model(x), first, atol=1e-5)  # weights already on the grid
    assert len(input_quantizers(model)) == 3
    assert all(len(m._forward_pre_hooks) == 1 for m, _ in prunable_weights(model))


def test_w8_after_w4_reports_the_coarser_measured_width(
    registry: Registry, context: CompressionContext
) -> None:
    model = tiny_mlp()
    ptq = get_compressor(registry, "ptq")
    ptq.compress(model, context, weight_bits=4, finetune_epochs=0)
    report = ptq.compress(model, context, weight_bits=8, finetune_epochs=0)
    assert report.metrics["weight_bits"] == 4.0  # lost precision is not restored


def test_w8a8_keeps_float_accuracy_and_w2_does_not(
    registry: Registry,
    digits_model: tuple[nn.Module, CompressionContext, Callable[[nn.Module], float]],
) -> None:
    model, context, accuracy = digits_model
    ptq = get_compressor(registry, "ptq")
    reference = accuracy(model)
    assert reference > 0.9
    w8a8 = copy.deepcopy(model)
    report = ptq.compress(w8a8, context, weight_bits=8, activation_bits=8, finetune_epochs=0)
    assert report.metrics["activation_bits"] == 8.0
    assert accuracy(w8a8) >= reference - 0.02
    w2 = copy.deepcopy(model)
    ptq.compress(w2, context, weight_bits=2, finetune_epochs=0)
    assert accuracy(w2) <= reference - 0.08


def test_w4_finetune_keeps_weights_on_the_grid_and_recovers(
    registry: Registry,
    digits_model: tuple[nn.Module, CompressionContext, Callable[[nn.Module], float]],
) -> None:
    model, context, accuracy = digits_model
    ptq = get_compressor(registry, "ptq")
    w3 = copy.deepcopy(model)
    ptq.compress(w3, context, weight_bits=3, finetune_epochs=0)
    tuned = copy.deepcopy(model)
    report = ptq.compress(tuned, context, weight_bits=3, finetune_epochs=2)
    assert report.metrics["weight_bits"] <= 3.0  # training happened through the fake-quant
    assert accuracy(tuned) >= accuracy(w3) - 0.01


def test_two_sided_pact_keeps_negative_activations() -> None:
    torch.manual_seed(0)
    x = torch.randn(4096) * 0.5 - 0.3  # SNT-like: much mass below zero (Eq. 1)
    errors = {}
    for two_sided in (True, False):
        quant = TwoSidedPACT(4, two_sided=two_sided)
        quant.start_observing()
        quant(x)
        quant.stop_observing()
        with torch.no_grad():
            y = quant(x)
        errors[two_sided] = float((y - x).pow(2).mean() / x.pow(2).mean())
        assert int(torch.unique(y).numel()) <= 16
    assert errors[True] < 0.02
    assert errors[False] > 0.3  # one-sided PACT erases the negative half


def test_pact_bounds_get_gradient_from_clipped_inputs_only() -> None:
    quant = TwoSidedPACT(8)
    with torch.no_grad():
        quant.lower.fill_(-1.0)
        quant.upper.fill_(1.0)
    quant(torch.tensor([2.0, 3.0])).sum().backward()
    assert float(quant.upper.grad) == pytest.approx(2.0)  # type: ignore[arg-type]
    assert float(quant.lower.grad) == pytest.approx(0.0, abs=1e-6)  # type: ignore[arg-type]


def test_qat_learns_a_negative_lower_bound_on_an_snt_like_model(
    registry: Registry, snt_digits_model: tuple[nn.Module, CompressionContext]
) -> None:
    model, context = snt_digits_model
    report = get_compressor(registry, "qat").compress(model, context, skip_first_last=False)
    assert report.metrics["negative_clip_layers"] >= 2  # inputs of layers 2 and 3
    assert report.metrics["weight_bits"] <= 4 and report.metrics["activation_bits"] <= 4
    lowers = [float(q.lower.detach()) for q in input_quantizers(model)]  # type: ignore[union-attr]
    assert min(lowers) < 0


@pytest.mark.parametrize(
    ("name", "params", "ctx", "match"),
    [
        ("ptq", {"weight_bits": 1}, "full", r"'weight_bits' must lie in \[2, 8\], got 1"),
        ("ptq", {"activation_bits": 16}, "full", r"'activation_bits' must lie in \[0, 8\]"),
        ("ptq", {"activation_bits": 1}, "full", "between 2 and 8 bits"),
        ("ptq", {"weight_granularity": "group"}, "full", "granularity must be one of"),
        ("ptq", {}, "no_finetune", "finetune_epochs=0"),
        ("ptq", {"activation_bits": 8, "finetune_epochs": 0}, "empty", "needs >= 1 batch"),
        ("qat", {}, "no_finetune", "finetune"),
    ],
)
def test_bad_quantization_requests_are_explained(
    registry: Registry,
    context: CompressionContext,
    name: str,
    params: dict[str, object],
    ctx: str,
    match: str,
) -> None:
    contexts = {
        "full": context,
        "no_finetune": CompressionContext(calibration=context.calibration),
        "empty": CompressionContext(),
    }
    with pytest.raises(PluginError, match=match):
        get_compressor(registry, name).compress(tiny_mlp(), contexts[ctx], **params)
