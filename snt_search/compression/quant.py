"""Simulated ("fake") quantization of weights and layer inputs, shared by ``ptq`` and ``qat``.

SNT paper, Sec. 2.1.2 and 5.2.1, Tables 2-3: 4-bit weights (W4), 8-bit weights and
activations (W8A8 / "A8W8") and W4A4. Everything here is *simulated*: values are rounded to
the grid of a ``bits``-bit integer format and stored/computed in float32, which measures the
accuracy a real integer kernel would get, not its speed or memory.

* **Weights** -- symmetric, per output channel (or per tensor), restricted range
  ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` with ``scale = max|w| / (2^(b-1) - 1)``. This is our own
  six lines rather than ``torch.ao.quantization.FakeQuantize``: its symmetric observers use the
  full ``[-2^(b-1), 2^(b-1) - 1]`` range, which at 4 bits clips the largest positive weight by
  one level and makes the grid lopsided. The fake-quant is a ``torch.nn.utils.parametrize``
  parametrization with a straight-through estimator, so fine-tuning updates the float weights
  while every forward pass sees quantized ones; :func:`freeze_weights` then stores the
  quantized values as a plain ``weight``.
* **Layer inputs** -- a quantizer module is attached to each Linear/Conv layer as the child
  ``input_quant`` and applied by a forward pre-hook (``ptq`` uses
  ``torch.ao.quantization.FakeQuantize`` with a min/max observer, static per-tensor affine;
  ``qat`` the two-sided PACT clip of :mod:`.pact`). Hooks are not part of a ``state_dict``: a
  saved model keeps its quantizer parameters, but reloading needs the quantizers re-attached.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from snt_search.specs import PluginError

from .pruning import PruneTarget

__all__ = [
    "GRANULARITIES",
    "WeightFakeQuant",
    "attach_input_quantizers",
    "calibrate",
    "check_bits",
    "fake_quant_weight",
    "freeze_weights",
    "input_quantizers",
    "measure_activation_bits",
    "measure_weight_bits",
    "quantize_weights",
]

GRANULARITIES = ("channel", "tensor")

Q = TypeVar("Q", bound=nn.Module)


def check_bits(name: str, bits: int, low: int = 2, high: int = 8) -> None:
    """Reject a bit width the simulation does not support."""
    if not low <= bits <= high:
        raise PluginError(
            f"{name} must be between {low} and {high} bits, got {bits!r}. "
            f"Fix: e.g. {name}=4 (W4, Table 3) or 8 (W8A8, Table 2)."
        )


def fake_quant_weight(w: torch.Tensor, bits: int, granularity: str = "channel") -> torch.Tensor:
    """Round ``w`` to a symmetric ``bits``-bit grid; gradients pass straight through."""
    qmax = 2 ** (bits - 1) - 1
    if granularity == "channel" and w.dim() > 1:
        amax = w.detach().abs().flatten(1).amax(1).view(-1, *[1] * (w.dim() - 1))
    else:
        amax = w.detach().abs().amax()
    scale = amax.clamp_min(1e-12) / qmax
    q = torch.clamp(torch.round(w / scale), -qmax, qmax) * scale
    return w + (q - w).detach()


class WeightFakeQuant(nn.Module):
    """Parametrization ``weight -> fake_quant_weight(weight)`` (straight-through estimator)."""

    def __init__(self, bits: int, granularity: str = "channel") -> None:
        super().__init__()
        check_bits("weight_bits", bits)
        if granularity not in GRANULARITIES:
            raise PluginError(
                f"weight granularity must be one of {GRANULARITIES}, got {granularity!r}. "
                "Fix the 'weight_granularity' parameter."
            )
        self.bits, self.granularity = bits, granularity

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quant_weight(weight, self.bits, self.granularity)


def quantize_weights(targets: Sequence[PruneTarget], bits: int, granularity: str) -> float:
    """Fake-quantize the weights of ``targets`` (live, trainable); return the relative L2 error.

    A weight already fake-quantized by a previous call is frozen first, so compressing twice
    quantizes the stored (already quantized) values again instead of stacking quantizers.
    """
    freeze_weights(targets)
    err = ref = 0.0
    for module, name in targets:
        original = getattr(module, name).detach().clone()
        parametrize.register_parametrization(module, name, WeightFakeQuant(bits, granularity))
        with torch.no_grad():
            err += float((getattr(module, name) - original).pow(2).sum())
            ref += float(original.pow(2).sum())
    return math.sqrt(err / ref) if ref > 0 else 0.0


def freeze_weights(targets: Iterable[PruneTarget]) -> None:
    """Replace live weight fake-quant by the quantized values (a plain ``weight``)."""
    for module, name in targets:
        if parametrize.is_parametrized(module, name):
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def measure_weight_bits(targets: Sequence[PruneTarget], granularity: str = "channel") -> float:
    """Bits needed for the most distinct values one quantization group holds (measured)."""
    most = 1
    for module, name in targets:
        w = getattr(module, name).detach()
        groups = w.flatten(1) if granularity == "channel" and w.dim() > 1 else w.reshape(1, -1)
        most = max(most, max(int(torch.unique(g).numel()) for g in groups))
    return float(math.ceil(math.log2(most))) if most > 1 else 1.0


def _quantize_input(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    quant = getattr(module, "input_quant", None)
    if quant is None:
        return args
    return (quant(args[0]), *args[1:])


def attach_input_quantizers(targets: Sequence[PruneTarget], make: Callable[[], Q]) -> list[Q]:
    """Give each target layer a fresh ``input_quant = make()`` applied to its input.

    A quantizer attached by an earlier call is replaced, never stacked.
    """
    quantizers = []
    for module, _ in targets:
        quant = make()
        module.input_quant = quant
        if _quantize_input not in module._forward_pre_hooks.values():
            module.register_forward_pre_hook(_quantize_input)
        quantizers.append(quant)
    return quantizers


def input_quantizers(model: nn.Module) -> list[nn.Module]:
    """The input quantizers attached to the layers of ``model``."""
    found = []
    for module in model.modules():
        quant = getattr(module, "input_quant", None)
        if isinstance(quant, nn.Module) and _quantize_input in module._forward_pre_hooks.values():
            found.append(quant)
    return found


def calibrate(
    model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], n_batches: int
) -> int:
    """Run up to ``n_batches`` calibration batches through ``model`` in eval mode, no grad."""
    if not batches or n_batches < 1:
        raise PluginError(
            f"activation calibration needs >= 1 batch; the context has {len(batches)} "
            f"calibration batches and calibration_batches={n_batches}. Fix: give the "
            "CompressionContext calibration data, or quantize weights only (activation_bits=0)."
        )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    used = 0
    with torch.no_grad():
        for x, _ in batches[:n_batches]:
            model(x.to(device))
            used += 1
    model.train(was_training)
    return used


def measure_activation_bits(
    model: nn.Module, targets: Sequence[PruneTarget], x: torch.Tensor
) -> float:
    """Bits needed for the most distinct values any quantized layer input holds on ``x``."""
    most = [1]

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        most[0] = max(most[0], int(torch.unique(args[0].detach()).numel()))

    handles = [module.register_forward_pre_hook(record) for module, _ in targets]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(x.to(next(model.parameters()).device))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return float(math.ceil(math.log2(most[0]))) if most[0] > 1 else 1.0
