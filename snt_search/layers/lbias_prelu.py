"""The PReLU sandwiched between learnable biases of SNT (paper Sec. 4.2, Eq. 1).

For channel ``i`` with learnable shift-in ``gamma_i``, negative slope ``beta_i`` and shift-out
``zeta_i``::

    f(x_i) = x_i - gamma_i + zeta_i             if x_i > gamma_i
           = beta_i * (x_i - gamma_i) + zeta_i   otherwise

which is ``prelu(x - gamma, beta) + zeta``. It has the form of ReActNet's RPReLU, the
binarization work [45] the paper borrows it from. At initialisation (``gamma = zeta = 0``,
``beta = 0.25``) it is exactly ``nn.PReLU(init=0.25)``.

The forward pass and the first-order backward pass run as one-pass kernels on CPU
(:mod:`snt_search.layers.eq1_kernels`); when autograd builds a graph of the backward pass
(``create_graph=True``, as the lambda_max estimate's Hessian-vector products do) the
backward pass is computed with differentiable ops instead, so second derivatives are exact.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from . import eq1_kernels, eq1_op

__all__ = ["LBiasPReLU"]


def _param_grads(sums: Tensor, like: Tensor) -> tuple[Tensor, ...]:
    """``[3, C]`` sums -> the gradients of gamma, beta, zeta in the parameters' dtype."""
    return tuple((sums if sums.dtype == like.dtype else sums.to(like.dtype)).unbind())


class _Eq1(torch.autograd.Function):
    """Eq. 1 on ``x`` with the layer's ``[C]`` parameters; ``tokens``: channels last."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, gamma: Tensor, beta: Tensor, zeta: Tensor, tokens: bool
    ) -> Tensor:
        ctx.save_for_backward(x, gamma, beta)
        ctx.tokens = tokens
        return eq1_kernels.forward(x, gamma, beta, zeta, tokens)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, gamma, beta = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: keep the backward differentiable
            gx, sums = eq1_kernels.backward_eager(grad, x, gamma, beta, ctx.tokens)
        else:
            gx, sums = eq1_kernels.backward(grad, x, gamma, beta, ctx.tokens)
        return (gx, *_param_grads(sums, gamma), None)


class _Eq1Inplace(torch.autograd.Function):
    """Eq. 1 written into ``x``; saves the output only, so needs ``beta > 0`` everywhere."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, gamma: Tensor, beta: Tensor, zeta: Tensor, tokens: bool
    ) -> Tensor:
        eq1_kernels.forward_(x, gamma, beta, zeta, tokens)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x, beta, zeta)
        ctx.tokens = tokens
        return x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        out, beta, zeta = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: keep the backward differentiable
            gx, sums = eq1_kernels.backward_from_output_eager(grad, out, beta, zeta, ctx.tokens)
        else:
            gx, sums = eq1_kernels.backward_from_output(grad, out, beta, zeta, ctx.tokens)
        return (gx, *_param_grads(sums, beta), None)


class LBiasPReLU(nn.Module):
    """Per-channel PReLU with learnable input and output shifts (paper Eq. 1).

    Args:
        num_channels: number of channels ``C``; each gets its own ``gamma``, ``beta``, ``zeta``
            (``3 * C`` parameters in all).
        channel_dim: where the channels are in the input: ``1`` for ``[B, C, ...]`` (convolution
            feature maps, NCHW) or ``-1`` for ``[..., C]`` (tokens ``[B, N, C]`` and the output
            of ``nn.Linear``). For 2-D inputs ``[B, C]`` both mean the same.
        init_slope: initial negative slope ``beta`` (0.25, like ``nn.PReLU``).
        inplace: overwrite the input with the output, as ``nn.ReLU(inplace=True)`` does (the
            ``lbias_prelu`` transform keeps the flag of the activation it replaces). It saves
            a full-size buffer per call and is taken on CPU while every ``beta`` is positive
            (the backward pass then recovers ``x - gamma`` from the output); otherwise the
            layer computes out of place.
    """

    def __init__(
        self,
        num_channels: int,
        channel_dim: int = 1,
        init_slope: float = 0.25,
        inplace: bool = False,
    ) -> None:
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
        self.inplace = inplace
        self.gamma = nn.Parameter(torch.zeros(num_channels))  # shift in
        self.beta = nn.Parameter(torch.full((num_channels,), float(init_slope)))  # negative slope
        self.zeta = nn.Parameter(torch.zeros(num_channels))  # shift out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.num_channels
        tokens = x.ndim <= 2 or self.channel_dim == -1
        if x.shape[-1 if tokens else 1] != c:
            raise ValueError(self._shape_error(x, -1 if tokens else 1))
        params = (self.gamma, self.beta, self.zeta)
        if tokens and x.ndim > 2 and not self.inplace and not x.is_contiguous():
            # e.g. a Mixer's residual stream after token mixing, [B, N, C] stored as [B][C][N]:
            # what consumes the output (LayerNorm, Linear) would make it contiguous anyway, and
            # the gradient comes back contiguous; computing on the transposed layout cost a
            # transposing copy of that gradient in every backward pass
            x = x.contiguous()
        if x.ndim > 2 and eq1_kernels.dense(x):  # any dense layout (NHWC, transposed tokens)
            cpu = x.device.type == "cpu"
            op = eq1_op.ops() if cpu else None  # the same, with the autograd node in C++
            # in place on x itself: in place on a view of x would make autograd copy the gradient
            if self.inplace and cpu and float(self.beta.detach().min()) > 0:
                return op.eq1_(x, *params, tokens) if op else _Eq1Inplace.apply(x, *params, tokens)
            return op.eq1(x, *params, tokens) if op else _Eq1.apply(x, *params, tokens)
        # otherwise [B, L, C] or [B, C, L]: one layout each for the fused kernels
        flat = x.reshape(1 if x.ndim <= 2 else x.shape[0], -1, c) if tokens else x.flatten(2)
        return _Eq1.apply(flat, *params, tokens).view(x.shape)

    def _shape_error(self, x: torch.Tensor, dim: int) -> str:
        return (
            f"LBiasPReLU({self.num_channels}, channel_dim={self.channel_dim}) got input of shape "
            f"{tuple(x.shape)} whose dim {dim} is {x.shape[dim]}; build it with the channel "
            f"count and channel_dim of the tensor it activates."
        )

    def extra_repr(self) -> str:
        inplace = ", inplace=True" if self.inplace else ""
        return f"{self.num_channels}, channel_dim={self.channel_dim}{inplace}"
