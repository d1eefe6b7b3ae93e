"""Eq. 1 followed by LayerNorm, fused: the opening of a pre-activated pre-norm branch under SNT.

``preact`` adds an activation in front of the norm of every residual branch of a Mixer or ViT
block (``x + MLP(LN(act(x)))``, docs/transforms.md) and ``snt`` makes it Eq. 1. Computed apart,
the activation writes a full tensor that LayerNorm reads back, and in the backward pass
LayerNorm writes a gradient that Eq. 1 reads back. :func:`eq1_layer_norm` does both in one
pass each way on CPU float32 rows (``eq1.cpp``), and falls back to the two layers otherwise.

Second derivatives stay exact: when autograd records the backward pass (``create_graph=True``,
the Hessian-vector products of the sharpness estimate), the backward pass recomputes the two
layers with differentiable ops and differentiates them.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import LayerNorm as TimmLayerNorm
from torch import Tensor, nn

from . import eq1_kernels
from .lbias_prelu import LBiasPReLU

__all__ = ["eq1_layer_norm"]

# nn.LayerNorm and timm's subclass (ViT blocks), which computes the same F.layer_norm
_LAYER_NORMS = (nn.LayerNorm, TimmLayerNorm)


def eq1_layer_norm(act: nn.Module, norm: nn.Module, x: Tensor) -> Tensor | None:
    """``norm(act(x))`` in one pass when ``act`` is an :class:`LBiasPReLU` over the last dim
    and ``norm`` an affine ``nn.LayerNorm`` (or timm's) over the same channels, on a CPU
    float32 ``x`` with float32 parameters; None when that does not hold or the native library
    is off (the caller then runs the two layers). Under CPU autocast too: LayerNorm keeps a
    float32 input in float32 there."""
    if not (
        type(act) is LBiasPReLU
        and type(norm) in _LAYER_NORMS
        and x.ndim >= 2
        and (act.channel_dim == -1 or x.ndim == 2)
        and norm.normalized_shape == (act.num_channels,)
        and x.shape[-1] == act.num_channels
        and x.device.type == "cpu"
        and x.dtype == torch.float32
    ):
        return None
    assert isinstance(norm, nn.LayerNorm) and isinstance(act, LBiasPReLU)
    params = (act.gamma, act.beta, act.zeta, norm.weight, norm.bias)
    if not all(p is not None and p.dtype == torch.float32 and p.is_contiguous() for p in params):
        return None
    lib = eq1_kernels.library()
    if lib is None:
        return None
    x = x.contiguous()  # e.g. a Mixer's tokens stored transposed; LayerNorm would copy too
    out: Tensor = _Eq1LayerNorm.apply(x, *params, norm.eps, lib)
    return out


def layer_norm_forward(
    lib: ctypes.CDLL, x: Tensor, gamma: Tensor, beta: Tensor, zeta: Tensor, w: Tensor,
    b: Tensor, eps: float,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """``layer_norm(eq1(x), w, b)`` over the last dim, and each row's mean and 1/std."""
    c = x.shape[-1]
    rows = x.numel() // c
    y = torch.empty_like(x)
    mean, rstd = torch.empty(rows), torch.empty(rows)
    lib.eq1_ln_forward_f32(
        x.data_ptr(), y.data_ptr(), mean.data_ptr(), rstd.data_ptr(), gamma.data_ptr(),
        beta.data_ptr(), zeta.data_ptr(), w.data_ptr(), b.data_ptr(), rows, c, eps,
        torch.get_num_threads(),
    )  # fmt: skip
    return y, mean, rstd


def layer_norm_backward(
    lib: ctypes.CDLL, grad: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, gamma: Tensor,
    beta: Tensor, zeta: Tensor, w: Tensor,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(grad_x, sums)`` of :func:`layer_norm_forward`; ``sums`` is ``[5, C]``: the gradients
    of w, b, gamma, beta and zeta. First order only."""
    grad = grad.contiguous()
    c = x.shape[-1]
    grad_x = torch.empty_like(x)
    sums = torch.empty(5, c)
    lib.eq1_ln_backward_f32(
        grad.data_ptr(), x.data_ptr(), mean.data_ptr(), rstd.data_ptr(), grad_x.data_ptr(),
        sums.data_ptr(), gamma.data_ptr(), beta.data_ptr(), zeta.data_ptr(), w.data_ptr(),
        x.numel() // c, c, torch.get_num_threads(),
    )  # fmt: skip
    return grad_x, sums


class _Eq1LayerNorm(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, gamma: Tensor, beta: Tensor, zeta: Tensor, w: Tensor, b: Tensor,
        eps: float, lib: ctypes.CDLL,
    ) -> Tensor:  # fmt: skip
        y, mean, rstd = layer_norm_forward(lib, x, gamma, beta, zeta, w, b, eps)
        ctx.save_for_backward(x, mean, rstd, gamma, beta, zeta, w, b)
        ctx.eps, ctx.lib = eps, lib
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, mean, rstd, gamma, beta, zeta, w, b = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: differentiate the two layers
            inputs = (x, gamma, beta, zeta, w, b)
            with torch.enable_grad():
                a = eq1_kernels.forward_eager(x, gamma, beta, zeta, True)
                y = F.layer_norm(a, (x.shape[-1],), w, b, ctx.eps)
            grads = torch.autograd.grad(y, inputs, grad, create_graph=True, allow_unused=True)
            return (*grads, None, None)
        grad_x, sums = layer_norm_backward(ctx.lib, grad, x, mean, rstd, gamma, beta, zeta, w)
        gw, gb, gg, gbe, gz = sums.unbind()
        return grad_x, gg, gbe, gz, gw, gb, None, None
