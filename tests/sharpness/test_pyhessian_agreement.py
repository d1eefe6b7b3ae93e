"""Agreement with PyHessian (Yao et al. 2020) on the same models, batches and loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snt_search.sharpness import estimate_lambda_max

from .helpers import SmallCNN, image_batches, small_mlp

pyhessian = pytest.importorskip("pyhessian")


def _pyhessian_top(model: nn.Module, batches: list, seed: int = 0) -> float:
    torch.manual_seed(seed)
    if len(batches) == 1:
        h = pyhessian.hessian(model.eval(), F.cross_entropy, data=batches[0], cuda=False)
    else:
        h = pyhessian.hessian(model.eval(), F.cross_entropy, dataloader=batches, cuda=False)
    values, _ = h.eigenvalues(maxIter=300, tol=1e-5, top_n=1)
    for p in model.parameters():
        p.grad = None
    return float(values[0])


@pytest.mark.parametrize("make_model", [SmallCNN, small_mlp], ids=["cnn", "mlp"])
@pytest.mark.parametrize("n_batches", [1, 3])
def test_lanczos_matches_pyhessian(make_model: type, n_batches: int) -> None:
    torch.manual_seed(0)
    model = make_model()
    batches = image_batches(n=48, batch_size=48 // n_batches)
    reference = _pyhessian_top(model, batches)
    ours = estimate_lambda_max(model, batches, tol=1e-4)
    assert ours.converged
    assert ours.lambda_max == pytest.approx(reference, rel=0.01)


def test_pyhessian_method_wraps_pyhessian() -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    batches = image_batches(n=32, batch_size=16)
    wrapped = estimate_lambda_max(model, batches, method="pyhessian", tol=1e-5, max_iter=300)
    direct = _pyhessian_top(model, batches)
    assert wrapped.method == "pyhessian" and wrapped.backend == "pyhessian"
    assert wrapped.lambda_max == pytest.approx(direct, rel=1e-3)
    assert wrapped.converged and 1 <= wrapped.hvp_count < 300
    lanczos = estimate_lambda_max(model, batches, tol=1e-4)
    assert lanczos.lambda_max == pytest.approx(wrapped.lambda_max, rel=0.01)
    assert lanczos.hvp_count < wrapped.hvp_count


def test_pyhessian_method_single_batch_and_top_k() -> None:
    torch.manual_seed(1)
    model = small_mlp()
    batches = image_batches(n=24, batch_size=24)
    r = estimate_lambda_max(model, batches, method="pyhessian", top_k=2, tol=1e-5, max_iter=300)
    ours = estimate_lambda_max(model, batches, top_k=2, tol=1e-6)
    assert r.eigenvalues[0] == pytest.approx(ours.eigenvalues[0], rel=0.01)
    assert len(r.eigenvalues) == 2


@pytest.mark.parametrize("n_batches", [1, 3])
def test_on_step_sees_every_power_step_estimate(n_batches: int) -> None:
    from snt_search.sharpness.reference import pyhessian_eigenvalues

    torch.manual_seed(0)
    model = SmallCNN().eval()
    batches = image_batches(n=24, batch_size=24 // n_batches)
    seen: list[float] = []
    out = pyhessian_eigenvalues(
        model,
        batches,
        F.cross_entropy,
        top_k=1,
        max_iter=300,
        tol=1e-4,
        seed=0,
        on_step=seen.append,
    )
    assert len(seen) == out.steps[0] >= 3
    # PyHessian stops when two consecutive estimates agree and returns the earlier one.
    assert out.eigenvalues[0] == seen[-2]
    assert abs(seen[-1] - seen[-2]) < 1e-4 * abs(seen[-2]) + 1e-6


def test_raising_from_on_step_stops_pyhessian_and_restores_state() -> None:
    import importlib

    hessian_module = importlib.import_module("pyhessian.hessian")

    from snt_search.sharpness.reference import pyhessian_eigenvalues

    class Enough(Exception):
        pass

    def stop_after_two(estimate: float) -> None:
        seen.append(estimate)
        if len(seen) == 2:
            raise Enough

    torch.manual_seed(0)
    model = small_mlp().eval()
    grads = [torch.full_like(p, 7.0) for p in model.parameters()]
    for p, g in zip(model.parameters(), grads, strict=True):
        p.grad = g
    products = (hessian_module.orthnormal, hessian_module.hessian_vector_product)
    for n_batches in (1, 2):
        seen: list[float] = []
        with pytest.raises(Enough):
            pyhessian_eigenvalues(
                model,
                image_batches(n=16, batch_size=16 // n_batches),
                F.cross_entropy,
                top_k=1,
                max_iter=300,
                tol=1e-9,
                seed=0,
                on_step=stop_after_two,
            )
        assert len(seen) == 2
    assert (hessian_module.orthnormal, hessian_module.hessian_vector_product) == products
    assert all(p.grad is g for p, g in zip(model.parameters(), grads, strict=True))


def test_concurrent_calls_leave_pyhessian_unwrapped_and_count_their_own_steps() -> None:
    import importlib
    import threading
    import time

    from snt_search.sharpness.reference import pyhessian_eigenvalues

    hessian_module = importlib.import_module("pyhessian.hessian")
    products = (hessian_module.orthnormal, hessian_module.hessian_vector_product)
    first_running = threading.Event()
    seen: dict[str, list[float]] = {"a": [], "b": []}
    out: dict[str, object] = {}

    def on_step_a(estimate: float) -> None:
        seen["a"].append(estimate)
        if len(seen["a"]) == 1:
            first_running.set()
            time.sleep(0.2)  # the second call starts meanwhile

    def call(name: str, on_step: object) -> None:
        torch.manual_seed(0)
        out[name] = pyhessian_eigenvalues(
            small_mlp().eval(),
            image_batches(n=16, batch_size=16),
            F.cross_entropy,
            top_k=1,
            max_iter=300,
            tol=1e-4,
            seed=0,
            on_step=on_step,  # type: ignore[arg-type]
        )

    a = threading.Thread(target=call, args=("a", on_step_a))
    a.start()
    assert first_running.wait(timeout=60)
    b = threading.Thread(target=call, args=("b", seen["b"].append))
    b.start()
    a.join()
    b.join()
    assert (hessian_module.orthnormal, hessian_module.hessian_vector_product) == products
    for name in ("a", "b"):
        assert out[name].steps[0] == len(seen[name]) >= 2  # type: ignore[attr-defined]
