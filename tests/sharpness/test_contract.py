"""The contract every trial relies on: modes, gradients, diagnostics, devices, backends."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import snt_search.sharpness.hvp as hvp_module
from snt_search.sharpness import (
    BACKENDS,
    HessianVectorProduct,
    SharpnessResult,
    clear_backend_cache,
    draw_batches,
    estimate_lambda_max,
    estimate_trace,
)

from .helpers import SmallCNN, image_batches, small_mlp


def _mixed_mode_model() -> nn.Module:
    model = SmallCNN().train()
    model.bn.eval()  # a submodule in another mode than its parent
    return model


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.mark.parametrize("method", ["lanczos", "power", "pyhessian"])
def test_mode_and_grads_restored(method: str) -> None:
    torch.manual_seed(0)
    model = _mixed_mode_model()
    before = _modes(model)
    model.fc.weight.grad = torch.full_like(model.fc.weight, 3.0)
    grad_object = model.fc.weight.grad
    r = estimate_lambda_max(model, image_batches(n=16), method=method, max_iter=5)
    assert _modes(model) == before
    assert model.fc.weight.grad is grad_object
    assert torch.equal(grad_object, torch.full_like(model.fc.weight, 3.0))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "fc.weight")
    assert math.isfinite(r.lambda_max)


def test_mode_restored_on_error() -> None:
    model = _mixed_mode_model()
    before = _modes(model)

    def broken_loss(logits: Tensor, y: Tensor) -> Tensor:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        estimate_lambda_max(model, image_batches(n=8), loss_fn=broken_loss)
    assert _modes(model) == before


def test_eval_mode_during_estimate_disables_dropout() -> None:
    torch.manual_seed(0)
    model = SmallCNN().train()
    a = estimate_lambda_max(model, image_batches(n=16), tol=1e-5, seed=3)
    b = estimate_lambda_max(model, image_batches(n=16), tol=1e-5, seed=3)
    assert a.lambda_max == b.lambda_max  # dropout would make the two differ


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_non_convergence_is_reported(method: str) -> None:
    torch.manual_seed(0)
    r = estimate_lambda_max(small_mlp(), image_batches(n=16), method=method, max_iter=1)
    assert not r.converged
    assert r.iterations == r.hvp_count == 1
    assert math.isfinite(r.lambda_max)


def test_nan_is_reported() -> None:
    model = small_mlp()
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    for method in ("lanczos", "power"):
        r = estimate_lambda_max(model, image_batches(n=16), method=method)
        assert math.isnan(r.lambda_max) and not r.converged
        d = r.as_dict()
        assert d["lambda_max"] is None and d["converged"] is False
        assert math.isnan(r.error_estimate) and d["error_estimate"] is None
        json.dumps(d, allow_nan=False)


def test_backends_agree() -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    batches = image_batches(n=32)
    a, b = (estimate_lambda_max(model, batches, backend=k, tol=1e-5, top_k=2) for k in BACKENDS)
    assert a.eigenvalues == pytest.approx(b.eigenvalues, rel=1e-3)
    hvp = {k: HessianVectorProduct(model.eval(), batches, F.cross_entropy, k) for k in BACKENDS}
    v = torch.randn(hvp["double_backward"].dim)
    assert torch.allclose(hvp["double_backward"](v), hvp["forward_over_reverse"](v), atol=1e-5)


class _OldStyleSquare(torch.autograd.Function):
    """A custom op without ``setup_context``: torch.func cannot transform it."""

    @staticmethod
    def forward(ctx: object, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)  # type: ignore[attr-defined]
        return x * x

    @staticmethod
    def backward(ctx: object, g: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return 2 * x * g


class _FuncUnfriendly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 3)

    def forward(self, x: Tensor) -> Tensor:
        return _OldStyleSquare.apply(self.fc(x.flatten(1)))


def test_auto_backend_falls_back_and_caches() -> None:
    clear_backend_cache()
    torch.manual_seed(0)
    batches = image_batches(n=16)
    r = estimate_lambda_max(
        _FuncUnfriendly(), batches, backend="auto", max_iter=3, cache_graph=False
    )
    assert r.backend == "double_backward"
    with pytest.raises(RuntimeError):
        estimate_lambda_max(_FuncUnfriendly(), batches, backend="forward_over_reverse")
    auto = estimate_lambda_max(small_mlp(), batches, max_iter=3, cache_graph=False)
    assert auto.backend in BACKENDS
    again = estimate_lambda_max(small_mlp(), batches, max_iter=3, cache_graph=False)
    assert again.backend == auto.backend


def test_graph_cache_is_exact_and_respects_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    batches = image_batches(n=32)
    cached = estimate_lambda_max(model, batches, tol=1e-5, top_k=2)
    assert cached.backend == "double_backward+cache"  # tiny graphs always fit
    plain = estimate_lambda_max(
        model, batches, tol=1e-5, top_k=2, backend="double_backward", cache_graph=False
    )
    assert plain.backend == "double_backward"
    assert cached.eigenvalues == pytest.approx(plain.eigenvalues, rel=1e-5)
    assert cached.hvp_count == plain.hvp_count
    monkeypatch.setattr(hvp_module, "cache_budget_bytes", lambda device: 0)
    over = estimate_lambda_max(model, batches, backend="double_backward", max_iter=3)
    assert over.backend == "double_backward"  # does not fit: recomputed per product
    forced = estimate_lambda_max(model, batches, max_iter=3, cache_graph=True)
    assert forced.backend == "double_backward+cache"
    with torch.no_grad():
        t = estimate_trace(model, batches, probes=3, cache_graph=True)
    assert t.trace == pytest.approx(
        estimate_trace(model, batches, probes=3, cache_graph=False).trace, rel=1e-5
    )


def test_works_under_no_grad_and_is_seeded() -> None:
    torch.manual_seed(0)
    model = small_mlp()
    batches = image_batches(n=16)
    with torch.no_grad():
        a = estimate_lambda_max(model, batches, seed=5)
        t = estimate_trace(model, batches, probes=3)
    b = estimate_lambda_max(model, batches, seed=5)
    assert a.lambda_max == b.lambda_max and a.seed == 5
    assert math.isfinite(t.trace)


def test_as_dict_is_json_safe() -> None:
    torch.manual_seed(0)
    r = estimate_lambda_max(small_mlp(), image_batches(n=16), top_k=2)
    d = r.as_dict()
    assert set(d) == {f for f in SharpnessResult.__dataclass_fields__}
    assert d["eigenvalues"] == list(r.eigenvalues)
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    t = estimate_trace(small_mlp(), image_batches(n=16), probes=2).as_dict()
    json.dumps(t, allow_nan=False)


def test_invalid_arguments_explain_the_fix() -> None:
    model, batches = small_mlp(), image_batches(n=8)
    with pytest.raises(ValueError, match="method must be one of"):
        estimate_lambda_max(model, batches, method="arnoldi")
    with pytest.raises(ValueError, match="start must be one of"):
        estimate_lambda_max(model, batches, start="ones")
    with pytest.raises(ValueError, match="backend must be one of"):
        estimate_lambda_max(model, batches, backend="jax")
    with pytest.raises(ValueError, match="batches is empty"):
        estimate_lambda_max(model, [])
    with pytest.raises(ValueError, match="max_iter"):
        estimate_lambda_max(model, batches, top_k=3, max_iter=2)
    for method in ("lanczos", "power"):
        with pytest.raises(ValueError, match=r"tol must be > 0 \(a relative tolerance"):
            estimate_lambda_max(model, batches, method=method, tol=-1.0)
    frozen = small_mlp().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        estimate_lambda_max(frozen, batches)


def test_draw_batches_is_a_fixed_seeded_subset() -> None:
    x = torch.arange(100, dtype=torch.float32).view(100, 1)
    y = torch.arange(100)
    a = draw_batches(x, y, samples=30, batch_size=8, seed=1)
    b = draw_batches(x, y, samples=30, batch_size=8, seed=1)
    c = draw_batches(x, y, samples=30, batch_size=8, seed=2)
    assert [len(bx) for bx, _ in a] == [8, 8, 8, 6]
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])
    assert all(torch.equal(bx.view(-1).long(), by) for bx, by in a)  # pairs stay aligned
    assert len({int(v) for bx, _ in a for v in bx.view(-1)}) == 30  # no repeats
    with pytest.raises(ValueError, match="samples must be in"):
        draw_batches(x, y, samples=101, batch_size=8, seed=0)
    with pytest.raises(TypeError, match="float"):
        draw_batches(y, y, samples=10, batch_size=8, seed=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["lanczos", "power", "pyhessian"])
def test_cuda_matches_cpu(method: str) -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    batches = image_batches(n=32)  # on the CPU: the estimator moves them
    cpu = estimate_lambda_max(model, batches, method=method, tol=1e-5, max_iter=300)
    cuda = estimate_lambda_max(model.cuda(), batches, method=method, tol=1e-5, max_iter=300)
    assert cuda.lambda_max == pytest.approx(cpu.lambda_max, rel=1e-2)
