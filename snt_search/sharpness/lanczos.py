"""Top-k eigenvalues of a symmetric operator by Lanczos with full reorthogonalisation.

Lanczos builds an orthonormal Krylov basis ``Q`` of ``span{q, Hq, H^2 q, ...}`` and the
tridiagonal ``T = Q^T H Q``; the Ritz values (eigenvalues of ``T``) converge to the extreme
eigenvalues of ``H`` far faster than power iteration converges to the dominant one (the error
decays with the Chebyshev rate ``~exp(-2 k sqrt(gap))`` rather than ``(l2/l1)^k``), which is
why this, not PyHessian's power iteration (Yao et al. 2020), is the default estimator.

Every new basis vector is re-orthogonalised against all previous ones (twice, "twice is
enough"), so no spurious copies of converged eigenvalues appear; the cost is ``O(k * dim)``
memory and flops per step, negligible next to a Hessian-vector product for ``k <= a few
hundred``.

Stopping rule (checked once at least ``top_k`` Ritz values exist), for each of the top ``k``
Ritz pairs ``(l_i, y_i)``: the relative Ritz residual ``r_i = |beta_m * s_{m,i}| / |l_i|`` (which
equals ``||H y_i - l_i y_i|| / |l_i|``) is ``<= tol`` (a rigorous bound), or the relative change
of ``l_i`` since the previous step has been ``<= tol`` on two consecutive steps, or the
gap-corrected error estimate ``r_i^2 |l_i| / gap_i`` is ``<= tol`` (from the residual-gap bound
``|l - lambda| <= ||r||^2 / gap``, e.g. Parlett, "The Symmetric Eigenvalue Problem"; ``gap_i``
is the distance to the nearest other Ritz value, an estimate of the true gap). The gap estimate
is trusted alone from step ``top_k + 2`` on; one step earlier the next Ritz value is too crude
an estimate of the next eigenvalue, so a calm step must confirm it. An invariant subspace
(``beta == 0``) means the Ritz values are exact and stops.

Like every a-posteriori rule that estimates the gap (and PyHessian's change-based one), this can
stop early when the start vector barely touches the top eigenvector (a near-degenerate top of
the spectrum); ``relative_residual`` (a rigorous bound on the distance to *some* eigenvalue)
is reported with every result. On the benchmark models the gap estimate saves one product
(``docs/benchmarks.md``, "Sharpness").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .start import start_vector

__all__ = ["LanczosOutput", "lanczos"]

_GAP_TRUST_STEPS = 2  # the gap estimate alone stops from step top_k + this on


@dataclass(frozen=True)
class LanczosOutput:
    """Top-k Ritz values (decreasing), Ritz vectors (rows, flat) and diagnostics."""

    eigenvalues: tuple[float, ...]
    eigenvectors: Tensor
    iterations: int
    relative_residual: float
    error_estimate: float
    converged: bool


def lanczos(
    matvec: Callable[[Tensor], Tensor],
    dim: int,
    *,
    top_k: int = 1,
    max_iter: int = 100,
    tol: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    start: Tensor | None = None,
) -> LanczosOutput:
    """Return the ``top_k`` algebraically largest eigenvalues of the symmetric ``matvec``.

    Args:
        matvec: ``v -> H v`` on flat tensors of length ``dim``.
        dim: dimension of ``H``; at most ``dim`` steps are taken.
        top_k: number of eigenvalues wanted (``1 <= top_k <= dim``).
        max_iter: maximum Lanczos steps (= Hessian-vector products); must be ``>= top_k``.
        tol: relative tolerance of the stopping rule (see the module docstring).
        seed: seed of the Gaussian start vector (drawn on the CPU, so CPU and CUDA agree).
        device, dtype: where the basis lives.
        start: optional direction the start vector is tilted towards (e.g. the loss
            gradient, see :mod:`.start`).

    ``error_estimate`` is the largest, over the returned values, of the smaller of the relative
    residual and the residual-gap estimate (the stopping rule's error estimate).
    Non-finite products stop the iteration with NaN eigenvalues and ``converged=False``.
    """
    if not 1 <= top_k <= dim:
        raise ValueError(f"top_k must be in [1, dim={dim}], got {top_k}")
    if max_iter < top_k:
        raise ValueError(f"max_iter ({max_iter}) must be >= top_k ({top_k}); raise max_iter")
    if not tol > 0:
        raise ValueError(f"tol must be > 0 (a relative tolerance, e.g. 1e-3), got {tol}")
    steps = min(max_iter, dim)
    gen = torch.Generator().manual_seed(seed)
    q = start_vector(dim, gen, hint=start, device=device, dtype=dtype)
    basis = _Basis(dim, device, dtype)
    basis.append(q)
    alphas: list[float] = []
    betas: list[float] = []
    prev: Tensor | None = None
    calm = 0  # consecutive steps with relative change <= tol
    theta = torch.full((1,), math.nan, dtype=torch.float64)
    vecs = torch.zeros(1, 1, dtype=torch.float64)
    res = torch.full((1,), math.inf, dtype=torch.float64)
    evals = theta
    converged = False
    iterations = 0
    for j in range(steps):
        iterations = j + 1
        qj = basis.get(j)
        w = matvec(qj)
        alpha = float(torch.dot(w, qj))
        w = w - alpha * qj
        if j > 0:
            w = w - betas[-1] * basis.get(j - 1)
        for _ in range(2):  # full reorthogonalisation, twice
            Q = basis.matrix()
            w = w - Q.T @ (Q @ w)
        beta = float(w.norm())
        alphas.append(alpha)
        if not (math.isfinite(alpha) and math.isfinite(beta)):
            theta = torch.full((top_k,), math.nan, dtype=torch.float64)
            res = torch.full((top_k,), math.nan, dtype=torch.float64)
            vecs = torch.zeros(j + 1, top_k, dtype=torch.float64)
            break
        evals, evecs = torch.linalg.eigh(_tridiagonal(alphas, betas))
        k = min(top_k, j + 1)
        theta = evals.flip(0)[:k]
        vecs = evecs.flip(1)[:, :k]
        res = beta * vecs[-1].abs() / theta.abs().clamp_min(torch.finfo(torch.float64).tiny)
        if k == top_k:
            if prev is not None:
                change = (theta - prev).abs() / theta.abs().clamp_min(1e-30)
                calm = calm + 1 if bool((change <= tol).all()) else 0
            prev = theta
            exhausted = beta <= 1e-10 * max(abs(float(theta[0])), 1.0)
            # One calm step suffices when the residual-gap error estimate is within tol too.
            gap_ok = (
                (calm >= 1 or j + 1 >= top_k + _GAP_TRUST_STEPS)
                and j + 1 > top_k
                and bool((_gap_error(evals, res, top_k) <= tol).all())
            )
            if exhausted or bool((res <= tol).all()) or calm >= 2 or gap_ok:
                converged = True
                break
        if beta == 0.0 or j + 1 == steps:
            break
        betas.append(beta)
        basis.append(w / beta)
    m = len(alphas)
    ritz_vectors = (vecs[:m].T.to(dtype=dtype, device=device) @ basis.matrix()[:m]).contiguous()
    values = tuple(float(t) for t in theta)
    finite = all(math.isfinite(v) for v in values) and len(values) == top_k
    estimate = res
    if finite and len(evals) > top_k:
        estimate = torch.minimum(res, _gap_error(evals, res, top_k))
    return LanczosOutput(
        eigenvalues=values
        if len(values) == top_k
        else values + (math.nan,) * (top_k - len(values)),
        eigenvectors=ritz_vectors,
        iterations=iterations,
        relative_residual=float(res.max()) if finite else math.nan,
        error_estimate=float(estimate.max()) if finite else math.nan,
        converged=converged and finite,
    )


def _gap_error(evals: Tensor, rel_res: Tensor, k: int) -> Tensor:
    """``r_i^2 / (gap_i * |l_i|)`` for the top ``k`` Ritz values (``evals`` ascending, > k)."""
    desc = evals.flip(0)
    theta = desc[:k]
    below = (theta - desc[1 : k + 1]).abs()
    above = torch.cat(
        [torch.full((1,), math.inf, dtype=desc.dtype), (desc[: k - 1] - theta[1:]).abs()]
    )
    gap = torch.minimum(below, above).clamp_min(torch.finfo(torch.float64).tiny)
    return rel_res**2 * theta.abs() / gap


def _tridiagonal(alphas: list[float], betas: list[float]) -> Tensor:
    """The symmetric tridiagonal ``T`` (float64) with diagonal ``alphas`` and off-diagonal."""
    n = len(alphas)
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if n > 1:
        off = torch.tensor(betas[: n - 1], dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return t


class _Basis:
    """Row-stacked orthonormal vectors in a buffer that doubles its capacity when full."""

    def __init__(self, dim: int, device: torch.device | str, dtype: torch.dtype) -> None:
        self._buf = torch.empty(8, dim, device=device, dtype=dtype)
        self._n = 0

    def append(self, v: Tensor) -> None:
        if self._n == self._buf.shape[0]:
            grown = torch.empty(
                2 * self._n, self._buf.shape[1], dtype=self._buf.dtype, device=self._buf.device
            )
            grown[: self._n] = self._buf
            self._buf = grown
        self._buf[self._n] = v
        self._n += 1

    def get(self, i: int) -> Tensor:
        return self._buf[i]

    def matrix(self) -> Tensor:
        return self._buf[: self._n]
