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
    """``norm(act(x))`` in one pass when ``act`` is an :class:`LBiasPReLU` over the last dim and
    ``norm`` an affine ``nn.LayerNorm`` (or timm's) over the same channels, on a CPU float32 ``x``; None when that does not hold (the caller then runs the two layers). Under CPU
    autocast too: LayerNorm keeps a float32 input in float32 there."""
    if not (
        type(act) is LBiasPReLU
        and type(norm) in _LAYER_NORMS
        and x.ndim >= 2
        and (act.channel_dim == -1 or x.ndim == 2)
        and norm.normalized_shape == (act.num_channels,)
        and x.shape[-1] == act.num_channels
        and norm.weight is not None
        and norm.bias is not None
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and eq1_kernels.compiled_enabled()
    ):
        return None
    assert isinstance(norm, nn.LayerNorm) and isinstance(act, LBiasPReLU)
    x = x.contiguous()  # e.g. a Mixer's tokens stored transposed; LayerNorm would copy too
    if (
        eq1_kernels.layer_norm_ready(x, act.gamma, act.beta, act.zeta, norm.weight, norm.bias)
        is None
    ):
        return None
    out: Tensor = _Eq1LayerNorm.apply(
        x, act.gamma, act.beta, act.zeta, norm.weight, norm.bias, norm.eps
    )
    return out


class _Eq1LayerNorm(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, gamma: Tensor, beta: Tensor, zeta: Tensor, w: Tensor, b: Tensor,
        eps: float,
    ) -> Tensor:  # fmt: skip
        res = eq1_kernels.layer_norm_forward(x, gamma, beta, zeta, w, b, eps)
        assert res is not None  # eq1_layer_norm checked it
        y, mean, rstd = res
        ctx.save_for_backward(x, mean, rstd, gamma, beta, zeta, w, b)
        ctx.eps = eps
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
            return (*grads, None)
        grad_x, sums = eq1_kernels.layer_norm_backward(grad, x, mean, rstd, gamma, beta, zeta, w)
        gw, gb, gg, gbe, gz = sums.unbind()
        return grad_x, gg, gbe, gz, gw, gb, None
