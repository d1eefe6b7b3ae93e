"""Seeded start vectors for the Krylov solvers, optionally tilted towards a hint direction.

A Gaussian start vector in ``dim`` ~ 1e6 dimensions has an overlap of only ~``dim**-0.5`` with the
top Hessian eigenvector, and Lanczos or power iteration spend their first steps growing it. The
loss gradient, in contrast, lies largely in the top Hessian subspace (Gur-Ari et al. 2018,
"Gradient Descent Happens in a Tiny Subspace"): on the SNT backbones its overlap with the top
eigenvectors was 0.3–0.9. ``start_vector(..., hint=g)`` returns the normalised sum of the
normalised seeded Gaussian vector and the normalised hint, which keeps a component along every
direction (so nothing the hint misses is missed by the solver) and most of the hint's overlap.
A hint that is zero or not finite is ignored.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["start_vector"]


def start_vector(
    dim: int,
    generator: torch.Generator,
    *,
    hint: Tensor | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Unit vector: seeded Gaussian (drawn on the CPU in float64), plus the unit ``hint``."""
    v = torch.randn(dim, generator=generator, dtype=torch.float64)
    v = v / v.norm()
    if hint is not None:
        h = hint.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
        if h.shape != (dim,):
            raise ValueError(f"hint must have {dim} elements, got {h.numel()}")
        norm = h.norm()
        if torch.isfinite(norm) and norm > 0:
            v = v + h / norm
            v = v / v.norm()
    return v.to(device=device, dtype=dtype)
