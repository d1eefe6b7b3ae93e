"""Eq. 1 + LayerNorm fused (the opening of a pre-activated pre-norm branch under snt)."""

from __future__ import annotations

import pytest
import torch
from backbones.tiny import tiny
from torch import nn

from snt_search.layers import LBiasPReLU, eq1_norm
from snt_search.layers.eq1_norm import eq1_layer_norm
from snt_search.registry import get_registry


def _pair(c: int = 48) -> tuple[LBiasPReLU, nn.LayerNorm]:
    torch.manual_seed(0)
    act, norm = LBiasPReLU(c, -1), nn.LayerNorm(c)
    with torch.no_grad():  # away from the initial values, so every term counts
        act.gamma.normal_(0, 0.3)
        act.zeta.normal_()
        act.beta.uniform_(0.1, 0.9)
        norm.weight.normal_()
        norm.bias.normal_()
    return act, norm


@pytest.mark.parametrize("transposed", [False, True], ids=["contiguous", "transposed"])
def test_fused_matches_the_two_layers_forward_backward_and_hvp(transposed: bool) -> None:
    act, norm = _pair()
    x = torch.randn(3, 10, 48, requires_grad=True)
    if transposed:  # tokens stored as [B][C][N], as a Mixer's residual stream is
        x = torch.randn(3, 48, 10).transpose(1, 2).requires_grad_()
    params = [act.gamma, act.beta, act.zeta, norm.weight, norm.bias]
    g = torch.randn(3, 10, 48)

    def loss(fused: bool) -> torch.Tensor:
        y = eq1_layer_norm(act, norm, x) if fused else norm(act(x))
        assert y is not None
        return (y * g).sum() + 0.1 * y.pow(2).sum()

    torch.testing.assert_close(loss(True), loss(False))
    first = [torch.autograd.grad(loss(f), [x, *params]) for f in (True, False)]
    for a, b in zip(*first, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    v = [torch.randn_like(p) for p in params]  # second order: what lambda_max differentiates

    def hvp(fused: bool) -> tuple[torch.Tensor, ...]:
        grads = torch.autograd.grad(loss(fused), params, create_graph=True)
        return torch.autograd.grad(grads, params, v)

    for a, b in zip(hvp(True), hvp(False), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_falls_back_where_the_fused_loop_does_not_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    act, norm = _pair()
    x = torch.randn(2, 5, 48)
    assert eq1_layer_norm(act, norm, x) is not None
    assert eq1_layer_norm(act, norm, x.bfloat16()) is None  # float32 only
    assert eq1_layer_norm(act, nn.LayerNorm(48, elementwise_affine=False), x) is None
    assert eq1_layer_norm(nn.GELU(), norm, x) is None
    assert eq1_layer_norm(LBiasPReLU(48, 1), norm, x) is None  # channels not on the last dim
    monkeypatch.setenv("SNT_SEARCH_COMPILE", "0")
    assert eq1_layer_norm(act, norm, x) is None


@pytest.mark.parametrize("backbone", ["mixer_s", "vit_tiny"])
def test_snt_pre_norm_blocks_take_the_fused_pass(
    backbone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = get_registry()
    torch.manual_seed(0)
    model = reg.get("backbone", backbone).build(  # type: ignore[attr-defined]
        num_classes=10, image_size=32, in_chans=3, **tiny(backbone)
    )
    reg.get("transform", "snt").apply(model)  # type: ignore[attr-defined]
    x = torch.randn(2, 3, 32, 32)
    calls: list[int] = []
    forward = eq1_norm.layer_norm_forward

    def counted(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        return forward(*args)

    monkeypatch.setattr(eq1_norm, "layer_norm_forward", counted)
    fused = model(x)
    grads = torch.autograd.grad(fused.square().sum(), list(model.parameters()))
    assert len(calls) == 2 * 2  # two blocks, two branches each
    monkeypatch.setenv("SNT_SEARCH_COMPILE", "0")  # the two layers, eagerly
    apart = model(x)
    torch.testing.assert_close(fused, apart, rtol=1e-4, atol=1e-5)
    apart_grads = torch.autograd.grad(apart.square().sum(), list(model.parameters()))
    for a, b in zip(grads, apart_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
