"""Estimators against Hessians known in closed form."""

from __future__ import annotations

import pytest
import torch

from snt_search.sharpness import BACKENDS, STARTS, estimate_lambda_max, estimate_trace
from snt_search.sharpness.lanczos import _gap_error

from .helpers import Quadratic, identity_loss, least_squares, mse_loss, spectrum_matrix

NO_DATA = [(torch.zeros(1, 1), torch.zeros(1))]


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_quadratic_top_eigenvalue(method: str, backend: str, start: str) -> None:
    spectrum = torch.cat([torch.linspace(-2.0, 3.0, 29), torch.tensor([10.0])]).double()
    model = Quadratic(spectrum_matrix(spectrum))
    r = estimate_lambda_max(
        model,
        NO_DATA,
        loss_fn=identity_loss,
        method=method,
        backend=backend,
        tol=1e-6,
        start=start,
    )
    assert r.converged
    assert r.lambda_max == pytest.approx(10.0, rel=1e-4)
    assert r.backend.startswith(backend) and r.method == method
    assert r.hvp_count == r.iterations >= 2
    assert r.relative_residual < 1e-2


def test_lanczos_top_k_matches_spectrum() -> None:
    spectrum = torch.linspace(-1.0, 8.0, 40).double()
    model = Quadratic(spectrum_matrix(spectrum, seed=1))
    r = estimate_lambda_max(model, NO_DATA, loss_fn=identity_loss, top_k=4, tol=1e-8)
    assert r.converged
    expected = spectrum.flip(0)[:4].tolist()
    assert r.eigenvalues == pytest.approx(expected, rel=1e-6)
    assert r.lambda_max == r.eigenvalues[0]


def test_zero_gradient_start_falls_back_to_random() -> None:
    model = Quadratic(spectrum_matrix(torch.tensor([4.0, 2.0, 1.0, 0.5]).double()))
    with torch.no_grad():
        model.w.zero_()  # the minimum: the gradient is exactly zero
    r = estimate_lambda_max(model, NO_DATA, loss_fn=identity_loss, tol=1e-8)
    assert r.converged and r.lambda_max == pytest.approx(4.0, rel=1e-6)


def test_gap_error_estimate() -> None:
    evals = torch.tensor([1.0, 6.0, 8.0, 10.0], dtype=torch.float64)  # ascending Ritz values
    rel_res = torch.tensor([0.01, 0.02], dtype=torch.float64)  # of 10 and 8
    est = _gap_error(evals, rel_res, 2)
    # 10: r = 0.1, gap 2 -> 0.1^2 / 2 / 10; 8: r = 0.16, gap min(2, 2) -> 0.16^2 / 2 / 8
    assert est.tolist() == pytest.approx([0.01**2 * 10 / 2, 0.02**2 * 8 / 2])


def test_lanczos_stops_early_on_an_isolated_outlier() -> None:
    spectrum = torch.cat([torch.linspace(0.0, 1.0, 200), torch.tensor([50.0])]).double()
    model = Quadratic(spectrum_matrix(spectrum, seed=7))
    r = estimate_lambda_max(model, NO_DATA, loss_fn=identity_loss, tol=1e-3, start="random")
    assert r.converged and r.lambda_max == pytest.approx(50.0, rel=1e-3)
    assert r.hvp_count <= 5


def test_power_top_k_by_deflation() -> None:
    spectrum = torch.tensor([9.0, 6.0, 3.0, 1.0, 0.5, 0.1]).double()
    model = Quadratic(spectrum_matrix(spectrum, seed=2))
    r = estimate_lambda_max(
        model, NO_DATA, loss_fn=identity_loss, method="power", top_k=2, tol=1e-9, max_iter=500
    )
    assert r.converged
    assert r.eigenvalues == pytest.approx([9.0, 6.0], rel=1e-4)


def test_negative_dominant_eigenvalue_is_reported() -> None:
    spectrum = torch.tensor([-7.0, -3.0, -1.0, -0.5]).double()
    model = Quadratic(spectrum_matrix(spectrum, seed=3))
    power = estimate_lambda_max(model, NO_DATA, loss_fn=identity_loss, method="power", tol=1e-9)
    assert power.lambda_max == pytest.approx(-7.0, rel=1e-4)  # largest magnitude, sign kept
    lanczos = estimate_lambda_max(model, NO_DATA, loss_fn=identity_loss, tol=1e-9)
    assert lanczos.lambda_max == pytest.approx(-0.5, rel=1e-4)  # algebraically largest
    assert lanczos.converged


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_least_squares_over_uneven_batches(method: str) -> None:
    model, x, y, hessian = least_squares()
    batches = [(x[:7], y[:7]), (x[7:30], y[7:30]), (x[30:], y[30:])]
    r = estimate_lambda_max(model, batches, loss_fn=mse_loss, method=method, tol=1e-8, max_iter=300)
    exact = torch.linalg.eigvalsh(hessian)
    assert r.converged and r.samples == 40
    assert r.lambda_max == pytest.approx(float(exact[-1]), rel=1e-5)


def test_trace_within_standard_errors() -> None:
    model, x, y, hessian = least_squares(seed=4)
    batches = [(x[:25], y[:25]), (x[25:], y[25:])]
    t = estimate_trace(model, batches, loss_fn=mse_loss, probes=60, seed=1)
    exact = float(torch.trace(hessian))
    assert t.probes == 60 and t.samples == 40 and t.stderr > 0
    assert abs(t.trace - exact) < 4 * t.stderr


def test_trace_exact_with_many_probes() -> None:
    model, x, y, hessian = least_squares(n=30, d=3, seed=5)
    t = estimate_trace(model, [(x, y)], loss_fn=mse_loss, probes=4000, seed=2)
    assert t.trace == pytest.approx(float(torch.trace(hessian)), rel=0.02)


def test_trace_of_diagonal_hessian_is_exact_with_one_probe() -> None:
    model = Quadratic(torch.diag(torch.tensor([1.0, 2.0, 5.0]).double()))
    t = estimate_trace(model, NO_DATA, loss_fn=identity_loss, probes=1)
    assert t.trace == pytest.approx(8.0)
    assert t.stderr != t.stderr  # NaN: undefined for one probe


@pytest.mark.parametrize("seed", [0, 1])
def test_lanczos_trusts_the_gap_estimate_from_the_third_step(seed: int) -> None:
    """At step 3 the gap-corrected estimate is within tol while the Ritz value still moved by
    more than tol since step 2: Lanczos stops there instead of waiting for a calm step."""
    spectrum = torch.cat([torch.linspace(0.0, 1.0, 200), torch.tensor([50.0])]).double()
    model = Quadratic(spectrum_matrix(spectrum, seed=seed))
    r = estimate_lambda_max(model, NO_DATA, loss_fn=identity_loss, tol=1e-3, start="random")
    assert r.converged and r.hvp_count == 3
    assert r.lambda_max == pytest.approx(50.0, rel=1e-3)


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("tol", [1e-2, 1e-3, 1e-4, 1e-6])
def test_error_estimate_tracks_the_actual_error(tol: float, start: str) -> None:
    # A clear gap (10 against at most 3): the residual-gap estimate the stopping rule uses is
    # within a small factor above the actual error, while the residual bound is far above it.
    spectrum = torch.cat([torch.linspace(-2.0, 3.0, 29), torch.tensor([10.0])]).double()
    model = Quadratic(spectrum_matrix(spectrum))
    r = estimate_lambda_max(model, NO_DATA, loss_fn=identity_loss, tol=tol, start=start)
    error = abs(r.lambda_max - 10.0) / 10.0
    assert r.converged and r.error_estimate <= tol
    assert error <= r.error_estimate <= 3 * error
    assert r.error_estimate < r.relative_residual / 5
    p = estimate_lambda_max(model, NO_DATA, loss_fn=identity_loss, tol=tol, method="power")
    assert p.error_estimate == p.relative_residual  # no gap estimate: the residual bound
