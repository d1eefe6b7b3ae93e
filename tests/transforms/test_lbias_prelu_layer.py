"""LBiasPReLU against a hand computation of Eq. 1 for both channel layouts."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from snt_search.layers import LBiasPReLU, eq1_kernels

from .conftest import compiler_rejecting


def _set(layer: LBiasPReLU, gamma: list[float], beta: list[float], zeta: list[float]) -> None:
    with torch.no_grad():
        layer.gamma.copy_(torch.tensor(gamma))
        layer.beta.copy_(torch.tensor(beta))
        layer.zeta.copy_(torch.tensor(zeta))


def _eq1(x: float, g: float, b: float, z: float) -> float:
    return x - g + z if x > g else b * (x - g) + z


GAMMA, BETA, ZETA = [0.5, -1.0], [0.1, 2.0], [0.25, -3.0]


def test_eq1_nchw_matches_hand_computation() -> None:
    layer = LBiasPReLU(2, channel_dim=1)
    _set(layer, GAMMA, BETA, ZETA)
    x = torch.tensor([[[[1.0, 0.0]], [[-2.0, 4.0]]]])  # [1, C=2, 1, 2]
    # channel 0 (g=.5, b=.1, z=.25): 1 -> .5+.25 ; 0 -> .1*(-.5)+.25
    # channel 1 (g=-1, b=2, z=-3): -2 -> 2*(-1)-3 ; 4 -> 5-3
    want = torch.tensor([[[[0.75, 0.2]], [[-5.0, 2.0]]]])
    torch.testing.assert_close(layer(x), want)
    hand = [[_eq1(v, GAMMA[c], BETA[c], ZETA[c]) for v in x[0, c, 0].tolist()] for c in range(2)]
    torch.testing.assert_close(layer(x)[0, :, 0], torch.tensor(hand))


def test_eq1_tokens_nlc_matches_hand_computation() -> None:
    layer = LBiasPReLU(2, channel_dim=-1)
    _set(layer, GAMMA, BETA, ZETA)
    x = torch.tensor([[[1.0, -2.0], [0.0, 4.0], [0.5, -1.0]]])  # [1, N=3, C=2]
    rows = x[0].tolist()
    want = [[_eq1(v, GAMMA[c], BETA[c], ZETA[c]) for c, v in enumerate(row)] for row in rows]
    torch.testing.assert_close(layer(x), torch.tensor([want]))
    assert layer(x)[0, 0].tolist() == pytest.approx([0.75, -5.0])


def test_at_init_equals_prelu_and_has_3c_params() -> None:
    x = torch.randn(4, 6, 5, 5)
    layer = LBiasPReLU(6, channel_dim=1)
    torch.testing.assert_close(layer(x), nn.PReLU(6, init=0.25)(x))
    assert sum(p.numel() for p in layer.parameters()) == 18


def test_gradients_reach_all_three_parameters() -> None:
    layer = LBiasPReLU(3, channel_dim=-1)
    layer(torch.randn(2, 7, 3)).square().sum().backward()
    for p in (layer.gamma, layer.beta, layer.zeta):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_wrong_shape_and_bad_channel_dim_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="dim 1 is 4"):
        LBiasPReLU(3, channel_dim=1)(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="channel_dim must be 1"):
        LBiasPReLU(3, channel_dim=2)


@pytest.mark.parametrize("inplace", [False, True], ids=["out_of_place", "inplace"])
@pytest.mark.parametrize(("shape", "dim"), [((2, 3, 4, 4), 1), ((2, 5, 3), -1), ((4, 3), -1)])
def test_hand_written_backward_is_exact_to_second_order(
    shape: tuple[int, ...], dim: int, inplace: bool
) -> None:
    """The sharpness estimate takes Hessian-vector products through this layer.

    First-order gradients come from the fused kernels, second-order ones from the
    differentiable formulas; the in-place variant recovers ``x - gamma`` from its output.
    """
    layer = LBiasPReLU(3, channel_dim=dim, inplace=inplace).double()
    with torch.no_grad():
        layer.gamma.normal_(0, 0.3)
        layer.beta.uniform_(0.0, 2.0)
        layer.zeta.normal_()
    x = torch.randn(*shape, dtype=torch.double, requires_grad=True)
    names = ("gamma", "beta", "zeta")
    params = tuple(getattr(layer, n).detach().clone().requires_grad_() for n in names)

    def f(x: torch.Tensor, *p: torch.Tensor) -> torch.Tensor:
        x = x * 1.0  # a fresh non-leaf: the in-place variant writes into it
        return torch.func.functional_call(layer, dict(zip(names, p, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))
    assert torch.autograd.gradgradcheck(f, (x, *params))


def _grads(layer: LBiasPReLU, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    layer.zero_grad()
    xx = x.clone().requires_grad_()
    out = layer(xx * 1.0)
    out.backward(g)
    return [out.detach(), xx.grad, *(p.grad for p in (layer.gamma, layer.beta, layer.zeta))]


@pytest.mark.parametrize(("shape", "dim"), [((4, 8, 6, 6), 1), ((4, 9, 8), -1)])
def test_fused_inplace_and_eager_paths_agree(
    shape: tuple[int, ...], dim: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    layer = LBiasPReLU(shape[dim], channel_dim=dim)
    with torch.no_grad():
        layer.gamma.normal_(0, 0.3)
        layer.beta.uniform_(0.1, 2.0)
        layer.zeta.normal_()
    x, g = torch.randn(shape), torch.randn(shape)
    fused = _grads(layer, x, g)
    layer.inplace = True
    inplace = _grads(layer, x, g)
    monkeypatch.setenv("SNT_SEARCH_COMPILE", "0")
    assert not eq1_kernels.compiled_enabled()
    eager = _grads(layer, x, g)
    for a, b, c in zip(fused, inplace, eager, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-4)


def test_inplace_writes_into_its_input_and_falls_back_for_non_positive_slopes() -> None:
    layer = LBiasPReLU(2, channel_dim=1, inplace=True)
    _set(layer, GAMMA, BETA, ZETA)
    x = torch.tensor([[[[1.0, 0.0]], [[-2.0, 4.0]]]])
    out = layer(x)
    assert out.data_ptr() == x.data_ptr()
    torch.testing.assert_close(x, torch.tensor([[[[0.75, 0.2]], [[-5.0, 2.0]]]]))
    _set(layer, GAMMA, [0.1, -2.0], ZETA)  # beta <= 0: x - gamma cannot come from the output
    x = torch.tensor([[[[1.0, 0.0]], [[-2.0, 4.0]]]], requires_grad=True)
    h = x * 1.0
    out = layer(h)
    assert out.data_ptr() != h.data_ptr()
    torch.testing.assert_close(out, torch.tensor([[[[0.75, 0.2]], [[-1.0, 2.0]]]]))
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[[[1.0, 0.1]], [[-2.0, 1.0]]]]))


@pytest.mark.parametrize("cxx", ["/nonexistent/g++", "false"], ids=["no_compiler", "fails"])
def test_a_failed_build_warns_once_and_computes_the_same(
    cxx: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(eq1_kernels, "_lib", [])
    monkeypatch.setattr(eq1_kernels, "_failed", [])
    monkeypatch.setenv("CXX", cxx)
    monkeypatch.setenv("SNT_SEARCH_CACHE_DIR", str(tmp_path))  # nothing built there yet
    layer = LBiasPReLU(3, channel_dim=1)
    x = torch.randn(2, 3, 4, 4)
    with pytest.warns(RuntimeWarning, match="could not build.*SNT_SEARCH_COMPILE=0"):
        out = layer(x)
    torch.testing.assert_close(out, nn.PReLU(3, init=0.25)(x))
    assert not eq1_kernels.compiled_enabled()
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        layer(x).sum().backward()
    assert not later
    assert not list(tmp_path.iterdir())  # no half-written library left behind


def test_the_library_is_built_once_into_the_cache_and_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SNT_SEARCH_CACHE_DIR", str(tmp_path))
    eq1_kernels._build()
    (built,) = tmp_path.glob("eq1-*.so")
    stamp = built.stat().st_mtime_ns
    eq1_kernels._build()
    assert [p.name for p in tmp_path.iterdir()] == [built.name]
    assert built.stat().st_mtime_ns == stamp


def test_flags_the_compiler_rejects_fall_back_to_the_next_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A compiler without ``-mprefer-vector-width`` (not x86) still builds the kernels."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CXX", str(compiler_rejecting(tmp_path, "-mprefer-vector-width")))
    monkeypatch.setenv("SNT_SEARCH_CACHE_DIR", str(cache))
    lib = eq1_kernels._build()
    assert hasattr(lib, "eq1_forward_bf16")
    assert len(list(cache.glob("eq1-*.so"))) == 1  # only the set that compiled is kept


def _no_eager(*_: object) -> None:
    raise AssertionError("took the eager formulas")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize(
    "layout", ["nchw", "nhwc", "tokens", "tokens_transposed", "nhwc_grad_nchw"]
)
@pytest.mark.parametrize(("c", "n"), [(70, 5), (16, 5), (48, 200), (320, 30)])
def test_native_kernels_match_the_eager_formulas(
    layout: str, dtype: torch.dtype, c: int, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every layout the native path takes against the eager formulas on the same input; the
    eager path is not taken at all. Channel counts: more than one chunk (64) with a tail, and
    multiples of 16 for the vectorised backward pass: one block; three blocks with 200 tokens,
    two row tiles; 320 channels, five 64-channel blocks (two row tiles with 30 tokens)."""
    torch.manual_seed(0)
    tokens = layout.startswith("tokens")
    if layout == "tokens":
        x = torch.randn(3, n, c)
    elif layout == "tokens_transposed":
        x = torch.randn(3, c, n).transpose(1, 2)  # [B, N, C] stored as [B][C][N]
    else:
        x = torch.randn(3, c, 4, 5)
        if layout != "nchw":
            x = x.contiguous(memory_format=torch.channels_last)
    x = x.to(dtype)
    g = torch.randn(x.shape).to(dtype)
    if layout == "nhwc":
        g = g.contiguous(memory_format=torch.channels_last)
    gamma, zeta = torch.randn(c) * 0.3, torch.randn(c)
    beta = torch.rand(c) + 0.1
    want_out = eq1_kernels.forward_eager(x.float(), gamma, beta, zeta, tokens)
    want_gx, want_sums = eq1_kernels.backward_eager(g.float(), x.float(), gamma, beta, tokens)
    monkeypatch.setattr(eq1_kernels, "forward_eager", _no_eager)
    monkeypatch.setattr(eq1_kernels, "backward_eager", _no_eager)
    out = eq1_kernels.forward(x, gamma, beta, zeta, tokens)
    gx, sums = eq1_kernels.backward(g, x, gamma, beta, tokens)
    assert out.stride() == x.stride() and gx.stride() == x.stride()
    tol = {"rtol": 1e-2, "atol": 2e-2} if dtype == torch.bfloat16 else {}
    torch.testing.assert_close(out.float(), want_out, **tol)
    torch.testing.assert_close(gx.float(), want_gx, **tol)
    torch.testing.assert_close(sums, want_sums, rtol=1e-4, atol=1e-4)
    inplace = x.clone()
    assert eq1_kernels.forward_(inplace, gamma, beta, zeta, tokens) is inplace
    torch.testing.assert_close(inplace, out)
    gx_out, sums_out = eq1_kernels.backward_from_output(g, out, beta, zeta, tokens)
    # bf16: where x - gamma is within rounding of 0, out - zeta may land on the other side of
    # the kink (the in-place layer decides the side from its output); compare the rest
    shape = (1, -1) + (1,) * (x.ndim - 2) if not tokens else (-1,)
    same_side = (out.float() - zeta.view(shape) > 0) == (x.float() - gamma.view(shape) > 0)
    assert same_side.float().mean() > 0.995
    torch.testing.assert_close(gx_out.float()[same_side], want_gx[same_side], **tol)
    if dtype == torch.float32:  # bf16: out - zeta rounds, so a few elements change side
        torch.testing.assert_close(sums_out, want_sums, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_backward_of_tensors_larger_than_the_caches_goes_row_by_row(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over 8 MiB and 64 channels the backward pass streams rows in order (eq1.cpp's
    kStreamBytes); the results are those of the eager formulas."""
    torch.manual_seed(0)
    c = 128
    x = torch.randn(3, (8 << 20) // (3 * c * dtype.itemsize) + 7, c).to(dtype)
    assert x.numel() * x.element_size() > 8 << 20
    g = torch.randn(x.shape).to(dtype)
    gamma, beta = torch.randn(c) * 0.3, torch.rand(c) + 0.1
    want_gx, want_sums = eq1_kernels.backward_eager(g.float(), x.float(), gamma, beta, True)
    monkeypatch.setattr(eq1_kernels, "backward_eager", _no_eager)
    gx, sums = eq1_kernels.backward(g, x, gamma, beta, True)
    tol = {"rtol": 1e-2, "atol": 2e-2} if dtype == torch.bfloat16 else {}
    torch.testing.assert_close(gx.float(), want_gx, **tol)
    torch.testing.assert_close(sums, want_sums, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("inplace", [False, True], ids=["out_of_place", "inplace"])
def test_bf16_channels_last_matches_float32(inplace: bool) -> None:
    """Under CPU autocast the layer gets bf16 NHWC maps: same layout out, float32 grads.

    The reference is float32 on the same (bf16-rounded) input. In place, ``x - gamma`` comes
    back as ``out - zeta`` rounded to bf16, so an element within bf16 rounding of the kink may
    take the other slope: at most a few in a thousand, and the sums barely move.
    """
    torch.manual_seed(0)
    layer = LBiasPReLU(8, channel_dim=1, inplace=inplace)
    with torch.no_grad():
        layer.gamma.normal_(0, 0.3)
        layer.zeta.normal_()
    x = torch.randn(4, 8, 6, 6).bfloat16().contiguous(memory_format=torch.channels_last)
    g = torch.randn(4, 8, 6, 6).bfloat16()
    want = _grads(layer, x.float(), g.float())
    got = _grads(layer, x, g)
    assert got[0].dtype == torch.bfloat16
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    assert all(t.dtype == torch.float32 for t in got[2:])
    torch.testing.assert_close(got[0].float(), want[0], rtol=1e-2, atol=1e-2)
    slope_flips = (got[1].float() - want[1]).abs() > 0.05
    assert int(slope_flips.sum()) <= 0.005 * x.numel() + 1
    for a, b in zip(got[2:], want[2:], strict=True):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=0.5)


@pytest.mark.parametrize(
    "shape", [(5, 16, 6, 6), (5, 128, 3, 3), (5, 1024, 2, 2), (3, 7000, 128)], ids=str
)
def test_native_backward_splits_the_samples_between_threads(
    shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On two threads each sums its share of the samples (5 samples: 2 and 3 of them), in row
    tiles that cross samples, or row by row for [3, 7000, 128] (over 8 MiB): the eager
    formulas' results."""
    torch.manual_seed(0)
    torch.set_num_threads(2)  # the fixture restores it
    tokens = len(shape) == 3
    c = shape[-1] if tokens else shape[1]
    x = torch.randn(shape)
    g = torch.randn(shape)
    if not tokens:
        x, g = (t.contiguous(memory_format=torch.channels_last) for t in (x, g))
    gamma, beta = torch.randn(c) * 0.3, torch.rand(c) + 0.1
    want_gx, want_sums = eq1_kernels.backward_eager(g, x, gamma, beta, tokens)
    monkeypatch.setattr(eq1_kernels, "backward_eager", _no_eager)
    gx, sums = eq1_kernels.backward(g, x, gamma, beta, tokens)
    torch.testing.assert_close(gx, want_gx)
    torch.testing.assert_close(sums, want_sums, rtol=1e-4, atol=1e-3)
