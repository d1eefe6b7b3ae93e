"""Hutchinson estimator of the Hessian trace with Rademacher probes.

``tr(H) = E[z^T H z]`` for ``z`` with i.i.d. +-1 entries (Hutchinson 1989); PyHessian
(Yao et al. 2020) uses it as the second sharpness measure next to ``lambda_max``. The estimate
is the mean over ``probes`` draws and its standard error is ``std / sqrt(probes)``; the
variance of one draw is ``2 * sum_{i != j} H_ij^2``, so a diagonal Hessian is exact with
a single probe.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["hutchinson"]


def hutchinson(
    matvec: Callable[[Tensor], Tensor],
    dim: int,
    *,
    probes: int = 100,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[float, float]:
    """Return ``(trace, stderr)`` from ``probes`` Rademacher probes (NaN stderr for 1 probe).

    The probes are drawn on the CPU from ``seed``, so CPU and CUDA runs use the same ones.
    """
    if probes < 1:
        raise ValueError(f"probes must be >= 1, got {probes}")
    gen = torch.Generator().manual_seed(seed)
    samples = torch.empty(probes, dtype=torch.float64)
    for i in range(probes):
        z = torch.randint(0, 2, (dim,), generator=gen).to(device=device, dtype=dtype) * 2 - 1
        samples[i] = float(torch.dot(matvec(z), z))
    mean = float(samples.mean())
    stderr = float(samples.std(correction=1)) / math.sqrt(probes) if probes > 1 else math.nan
    return mean, stderr
