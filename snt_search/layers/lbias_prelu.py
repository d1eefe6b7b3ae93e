"""The PReLU sandwiched between learnable biases of SNT (paper Sec. 4.2, Eq. 1).

For channel ``i`` with learnable shift-in ``gamma_i``, negative slope ``beta_i`` and shift-out
``zeta_i``::

    f(x_i) = x_i - gamma_i + zeta_i             if x_i > gamma_i
           = beta_i * (x_i - gamma_i) + zeta_i   otherwise

which is ``prelu(x - gamma, beta) + zeta``: the forward pass is computed that way (``F.prelu``
is one fused kernel), the backward pass by hand (see ``_PReLUShift``). It has the form of ReActNet's RPReLU, the binarization work [45] the paper
borrows it from. At initialisation (``gamma = zeta = 0``,
``beta = 0.25``) it is exactly ``nn.PReLU(init=0.25)``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LBiasPReLU"]


class _PReLUShift(torch.autograd.Function):
    """``prelu(y, beta) + zeta`` with channels on dim 1; ``view`` broadcasts a parameter there.

    The forward pass is two fused kernels (``F.prelu``, in-place ``add_``). The backward pass
    avoids ``F.prelu``'s backward kernel, which is several times slower on CPU than the few
    elementwise ops below and dominated this layer's cost. It is written with differentiable
    ops on the saved input, so double backward (Hessian-vector products for the sharpness
    estimate) stays exact.
    """

    @staticmethod
    def forward(ctx: Any, y: Tensor, beta: Tensor, zeta: Tensor, view: tuple[int, ...]) -> Tensor:
        ctx.save_for_backward(y, beta)
        ctx.view = view
        return F.prelu(y, beta).add_(zeta.view(view))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        y, beta = ctx.saved_tensors
        reduce = [d for d in range(grad.ndim) if d != 1]
        need_beta, need_zeta = ctx.needs_input_grad[1:3]
        gz = grad.sum(reduce) if need_zeta else None
        pos = torch.ops.aten.threshold_backward(grad, y, 0)  # grad where y > 0, else 0
        neg = grad - pos  # grad where y <= 0
        if torch.is_grad_enabled():  # create_graph=True: out-of-place, differentiable
            gb = (neg * y).sum(reduce) if need_beta else None
            return torch.addcmul(pos, neg, beta.view(ctx.view)), gb, gz, None
        # Plain backward: reuse the two temporaries in place. Fresh full-size buffers are
        # what this layer costs most on CPU (allocation and first touch), not arithmetic.
        gy = pos.addcmul_(neg, beta.view(ctx.view))
        gb = neg.mul_(y).sum(reduce) if need_beta else None
        return gy, gb, gz, None


class LBiasPReLU(nn.Module):
    """Per-channel PReLU with learnable input and output shifts (paper Eq. 1).

    Args:
        num_channels: number of channels ``C``; each gets its own ``gamma``, ``beta``, ``zeta``
            (``3 * C`` parameters in all).
        channel_dim: where the channels are in the input: ``1`` for ``[B, C, ...]`` (convolution
            feature maps, NCHW) or ``-1`` for ``[..., C]`` (tokens ``[B, N, C]`` and the output
            of ``nn.Linear``). For 2-D inputs ``[B, C]`` both mean the same.
        init_slope: initial negative slope ``beta`` (0.25, like ``nn.PReLU``).
    """

    def __init__(self, num_channels: int, channel_dim: int = 1, init_slope: float = 0.25) -> None:
        super().__init__()
        if num_channels < 1:
            raise ValueError(f"LBiasPReLU needs num_channels >= 1, got {num_channels}.")
        if channel_dim not in (1, -1):
            raise ValueError(
                f"LBiasPReLU channel_dim must be 1 (NCHW feature maps) or -1 (tokens / Linear "
                f"features), got {channel_dim}."
            )
        self.num_channels = num_channels
        self.channel_dim = channel_dim
        self.gamma = nn.Parameter(torch.zeros(num_channels))  # shift in
        self.beta = nn.Parameter(torch.full((num_channels,), float(init_slope)))  # negative slope
        self.zeta = nn.Parameter(torch.zeros(num_channels))  # shift out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.num_channels
        if x.ndim <= 2 or self.channel_dim == -1:
            if x.shape[-1] != c:
                raise ValueError(self._shape_error(x, -1))
            y = x.reshape(-1, c) + (-self.gamma)  # adding -gamma: no full-size neg in backward
            return _PReLUShift.apply(y, self.beta, self.zeta, (c,)).view(x.shape)
        if x.shape[1] != c:
            raise ValueError(self._shape_error(x, 1))
        view = (c,) + (1,) * (x.ndim - 2)
        y = x + (-self.gamma).view(view)
        return _PReLUShift.apply(y, self.beta, self.zeta, view)

    def _shape_error(self, x: torch.Tensor, dim: int) -> str:
        return (
            f"LBiasPReLU({self.num_channels}, channel_dim={self.channel_dim}) got input of shape "
            f"{tuple(x.shape)} whose dim {dim} is {x.shape[dim]}; build it with the channel "
            f"count and channel_dim of the tensor it activates."
        )

    def extra_repr(self) -> str:
        return f"{self.num_channels}, channel_dim={self.channel_dim}"
