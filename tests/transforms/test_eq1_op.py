"""The C++ Eq. 1 operator against LBiasPReLU's Python autograd.Function, and its fallbacks."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from snt_search.layers import LBiasPReLU, eq1_kernels, eq1_op

from .conftest import compiler_rejecting


def _inputs(layout: str, dtype: torch.dtype, c: int = 32) -> tuple[torch.Tensor, bool]:
    torch.manual_seed(0)
    if layout == "tokens":
        return torch.randn(3, 7, c).to(dtype), True
    if layout == "tokens_transposed":  # [B, N, C] stored as [B][C][N]
        return torch.randn(3, c, 7).transpose(1, 2).to(dtype), True
    x = torch.randn(3, c, 4, 5).to(dtype)
    return (x.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else x), False


def _layer(c: int, tokens: bool, inplace: bool) -> LBiasPReLU:
    layer = LBiasPReLU(c, channel_dim=-1 if tokens else 1, inplace=inplace)
    with torch.no_grad():
        layer.gamma.normal_(0, 0.3)
        layer.beta.uniform_(0.1, 1.0)
        layer.zeta.normal_()
    return layer


def _step(layer: LBiasPReLU, x: torch.Tensor) -> list[torch.Tensor]:
    """Output, input gradient, parameter gradients, and a Hessian-vector product's result."""
    leaf = x.detach().clone().requires_grad_()
    out = layer(leaf * 1.0)  # not the leaf itself: the in-place layer may overwrite it
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out.dtype)
    params = [leaf, layer.gamma, layer.beta, layer.zeta]
    grads = torch.autograd.grad((out.float() ** 2 * g.float()).sum(), params, create_graph=True)
    hvp = torch.autograd.grad(sum(a.sum() for a in grads), params)  # H times a vector of ones
    return [out.detach(), *(t.detach() for t in grads), *hvp]


@pytest.mark.parametrize("inplace", [False, True], ids=["out_of_place", "inplace"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("layout", ["nchw", "nhwc", "tokens", "tokens_transposed"])
def test_the_operator_computes_what_the_python_function_does(
    layout: str, dtype: torch.dtype, inplace: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forward, first-order and second-order (create_graph) results on every layout; float64
    takes the operator's eager formulas, float32 and bfloat16 its loops."""
    x, tokens = _inputs(layout, dtype)
    layer = _layer(x.shape[-1 if tokens else 1], tokens, inplace)
    assert eq1_op.ops() is not None
    with_op = _step(layer, x)
    node = type(layer(x.detach().clone().requires_grad_() * 1.0).grad_fn).__name__
    assert node == "CppFunction"  # the operator's C++ autograd node, not the Python Function
    monkeypatch.setattr(eq1_op, "ops", lambda: None)
    python = _step(layer, x)
    for got, want in zip(with_op, python, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_failed_operator_build_warns_once_and_keeps_the_python_function(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A compiler without C++20 builds the loops but not the operator."""
    monkeypatch.setenv("CXX", str(compiler_rejecting(tmp_path, "-std=c++20")))
    monkeypatch.setenv("SNT_SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(eq1_kernels, "_lib", [])
    monkeypatch.setattr(eq1_op, "_loaded", [])
    monkeypatch.setattr(eq1_op, "_failed", [])
    layer = _layer(16, False, inplace=False)
    x = torch.randn(2, 16, 3, 3)
    with pytest.warns(RuntimeWarning, match="could not build the C.. Eq. 1 operator.*c.+20"):
        out = layer(x)
    assert eq1_kernels.library() is not None  # the loops did build
    torch.testing.assert_close(out, eq1_kernels.forward_eager(x, *layer.parameters(), False))
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        grad_fn = layer(x.requires_grad_()).grad_fn
    assert not later
    assert type(grad_fn).__name__ == "_Eq1Backward"  # the Python autograd.Function
    assert not list((tmp_path / "cache").glob("*eq1_op*"))  # no half-written library


def test_the_operator_is_built_once_and_reused() -> None:
    built = eq1_op._build()
    stamp = built.stat().st_mtime_ns
    assert eq1_op._build() == built and built.stat().st_mtime_ns == stamp


def test_compiling_off_turns_the_operator_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNT_SEARCH_COMPILE", "0")
    assert eq1_op.ops() is None
    layer = _layer(8, True, inplace=False)
    assert type(layer(torch.randn(2, 3, 8, requires_grad=True)).grad_fn).__name__ != "CppFunction"
