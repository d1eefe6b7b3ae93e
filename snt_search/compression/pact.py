"""Two-sided PACT: learnable clipping range for quantized activations.

PACT (Choi et al. 2018, ref. [7] of the SNT paper, Sec. 2.1.2) replaces a ReLU by
``clip(x, 0, alpha)`` with a learnable ``alpha`` and quantizes ``[0, alpha]`` uniformly. Its
lower bound is the fixed 0 of the ReLU it replaces. SNT models break that assumption: the
learnable-bias PReLU of Eq. 1, ``f(x) = beta * (x - gamma) + zeta`` below ``gamma``, sends
activations below zero (and the shift ``zeta`` moves the whole distribution), so a one-sided
clip at 0 would erase the negative half of every SNT activation.

:class:`TwoSidedPACT` therefore learns both ends: ``y = clip(x, lower, upper)`` quantized to
``2^bits`` uniform levels on ``[lower, upper]``. Both bounds start at the min / max observed on
calibration data and are trained with the rest of the network; gradients reach ``upper`` from
inputs above it and ``lower`` from inputs below it (PACT's rule, mirrored), and both through
the step size, with a straight-through estimator for the rounding. On a ReLU network the
calibrated lower bound is 0 and no input ever falls below it, so the quantizer behaves as the
original one-sided PACT; ``two_sided=False`` pins ``lower`` at 0 to get exactly that.
"""

from __future__ import annotations

import torch
from torch import nn

from .quant import check_bits

__all__ = ["TwoSidedPACT"]


class TwoSidedPACT(nn.Module):
    """Quantize the input to ``bits`` bits on a learnable range ``[lower, upper]``."""

    seen_min: torch.Tensor
    seen_max: torch.Tensor

    def __init__(self, bits: int, two_sided: bool = True) -> None:
        super().__init__()
        check_bits("activation_bits", bits)
        self.bits, self.two_sided = bits, two_sided
        self.lower = nn.Parameter(torch.zeros(()), requires_grad=two_sided)
        self.upper = nn.Parameter(torch.ones(()))
        self.observing = False
        self.register_buffer("seen_min", torch.tensor(float("inf")))
        self.register_buffer("seen_max", torch.tensor(float("-inf")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.seen_min = torch.minimum(self.seen_min, x.detach().min())
            self.seen_max = torch.maximum(self.seen_max, x.detach().max())
            return x
        lower = self.lower
        upper = torch.maximum(self.upper, lower + 1e-4)
        y = torch.minimum(torch.maximum(x, lower), upper)
        step = (upper - lower) / (2**self.bits - 1)
        q = (y - lower) / step
        q = q + (torch.round(q) - q).detach()
        return q * step + lower

    def start_observing(self) -> None:
        """Record the input range instead of quantizing (calibration)."""
        self.observing = True
        self.seen_min.fill_(float("inf"))
        self.seen_max.fill_(float("-inf"))

    def stop_observing(self) -> None:
        """Initialize the bounds from the recorded range and start quantizing."""
        self.observing = False
        if not bool(torch.isfinite(self.seen_min)):
            return  # the layer never ran during calibration: keep the current range
        low = float(self.seen_min) if self.two_sided else 0.0
        high = max(float(self.seen_max), low + 1e-4)
        with torch.no_grad():
            self.lower.fill_(low)
            self.upper.fill_(high)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, two_sided={self.two_sided}"
