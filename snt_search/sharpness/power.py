"""Dominant eigenvalues by power iteration with deflation, as in PyHessian (Yao et al. 2020).

For each of the ``top_k`` eigenvalues: start from a seeded Gaussian vector, orthogonalise it
against the eigenvectors already found, and iterate ``v <- H v / ||H v||``; the Rayleigh
quotient ``l = v^T H v`` is the estimate. Stop when ``|l_t - l_{t-1}| / (|l_{t-1}| + 1e-6)``
``< tol`` (PyHessian's rule) or after ``max_iter`` products for that eigenvalue.

Power iteration converges to the eigenvalue of largest *magnitude*, at the rate
``|l2 / l1|`` per step; a negative result means the dominant curvature is negative and is
reported as such. It is kept as the reference method matching PyHessian; ``lanczos`` is faster.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .start import start_vector

__all__ = ["PowerOutput", "power_iteration"]


@dataclass(frozen=True)
class PowerOutput:
    """Eigenvalues (in the order found), eigenvectors (rows, flat) and diagnostics."""

    eigenvalues: tuple[float, ...]
    eigenvectors: Tensor
    iterations: int
    relative_residual: float
    converged: bool

    @property
    def error_estimate(self) -> float:
        """Power iteration has no gap estimate: its error estimate is the residual bound."""
        return self.relative_residual


def power_iteration(
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
) -> PowerOutput:
    """Return the ``top_k`` dominant eigenvalues of the symmetric ``matvec`` by deflation.

    Args:
        matvec: ``v -> H v`` on flat tensors of length ``dim``.
        dim: dimension of ``H``.
        top_k: number of eigenvalues (``1 <= top_k <= dim``).
        max_iter: maximum products *per eigenvalue* (as PyHessian's ``maxIter``).
        tol: relative-change tolerance (PyHessian's rule, see the module docstring).
        seed: seed of the Gaussian start vectors (drawn on the CPU).
        device, dtype: where the vectors live.
        start: optional direction every start vector is tilted towards (see :mod:`.start`).

    ``relative_residual`` is ``max_i ||H v_i - l_i v_i|| / |l_i|`` at each eigenvalue's last
    step (free: ``H v_i`` is computed anyway). ``converged`` requires every eigenvalue to
    meet the tolerance before ``max_iter`` and all values to be finite.
    """
    if not 1 <= top_k <= dim:
        raise ValueError(f"top_k must be in [1, dim={dim}], got {top_k}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0 (a relative tolerance, e.g. 1e-3), got {tol}")
    gen = torch.Generator().manual_seed(seed)
    values: list[float] = []
    vectors: list[Tensor] = []
    residuals: list[float] = []
    all_converged = True
    iterations = 0
    for _ in range(top_k):
        v = start_vector(dim, gen, hint=start, device=device, dtype=dtype)
        value = math.nan
        residual = math.nan
        converged = False
        for _ in range(max_iter):
            v = _orthonormalise(v, vectors)
            hv = matvec(v)
            iterations += 1
            new = float(torch.dot(hv, v))
            residual = float((hv - new * v).norm()) / max(abs(new), 1e-30)
            norm = float(hv.norm())
            if not (math.isfinite(new) and math.isfinite(norm)):
                value, residual = math.nan, math.nan
                break
            if norm == 0.0:  # v is in the null space: the eigenvalue is exactly 0
                value, converged = 0.0, True
                break
            v = hv / norm
            if math.isfinite(value) and abs(value - new) / (abs(value) + 1e-6) < tol:
                value, converged = new, True
                break
            value = new
        values.append(value)
        vectors.append(v)
        residuals.append(residual)
        all_converged = all_converged and converged
        if not math.isfinite(value):
            values.extend([math.nan] * (top_k - len(values)))
            break
    finite = all(math.isfinite(x) for x in values)
    return PowerOutput(
        eigenvalues=tuple(values),
        eigenvectors=torch.stack(vectors),
        iterations=iterations,
        relative_residual=max(residuals) if finite else math.nan,
        converged=all_converged and finite,
    )


def _orthonormalise(v: Tensor, basis: list[Tensor]) -> Tensor:
    """Remove from ``v`` its components along the orthonormal ``basis`` and normalise."""
    for b in basis:
        v = v - torch.dot(v, b) * b
    return v / v.norm()
