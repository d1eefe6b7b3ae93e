"""Result records of the sharpness estimators.

Both records are frozen so a result stored with a trial can be trusted not to change, and both
have ``as_dict()`` returning JSON-safe values (Python ``int``/``float``/``str``/``bool``/
``None``/``list`` only). Non-finite floats (NaN, +-inf) are mapped to ``None`` by ``as_dict()``
so that ``json.dumps(d, allow_nan=False)`` works; the dataclass fields themselves keep the float
(a NaN ``lambda_max`` always comes with ``converged=False``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["SharpnessResult", "TraceResult"]


def _json_safe(value: Any) -> Any:
    """Return ``value`` with tuples turned into lists and non-finite floats into ``None``."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (tuple, list)):
        return [_json_safe(v) for v in value]
    raise TypeError(f"value {value!r} of type {type(value).__name__} is not JSON-safe")


@dataclass(frozen=True)
class SharpnessResult:
    """Top Hessian eigenvalue(s) of the training loss and how they were obtained.

    Attributes:
        lambda_max: the top eigenvalue. ``lanczos`` gives the algebraically largest one;
            ``power``/``pyhessian`` give the one of largest magnitude (as PyHessian, Yao et al.
            2020), which is negative when the Hessian's dominant direction is concave. NaN
            when the loss or a Hessian-vector product was not finite.
        eigenvalues: the ``top_k`` eigenvalues, in decreasing order (``eigenvalues[0]`` is
            ``lambda_max``).
        method: ``"lanczos"``, ``"power"`` or ``"pyhessian"``.
        backend: the Hessian-vector-product backend actually used
            (``"double_backward"`` or ``"forward_over_reverse"``; ``"pyhessian"`` for PyHessian).
        iterations: Krylov/power iterations performed (for ``top_k > 1`` power: the sum).
        hvp_count: Hessian-vector products over the whole sample set spent by the method
            (auto-backend timing on one batch is not counted; its time is in ``wall_time_s``).
        relative_residual: ``max_i ||H v_i - l_i v_i|| / |l_i|`` over the returned pairs, an
            a-posteriori error bar: each ``l_i`` is within ``relative_residual * |l_i|`` of a
            true eigenvalue.
        error_estimate: estimated relative error of the returned values. ``lanczos``: per
            value the smaller of its relative residual and the residual-gap estimate
            ``r^2 |l| / gap`` (Parlett; ``gap`` from the next Ritz value; the stopping rule
            stops when it is ``<= tol``, or after two calm steps), the largest over the
            values; ``power`` and
            ``pyhessian`` have no gap estimate and report ``relative_residual``. An estimate,
            not a bound: see docs/sharpness.md, "How early Lanczos may stop".
        converged: the stopping rule was met before ``max_iter`` and all values are finite.
        samples: number of data samples the Hessian was averaged over.
        seed: seed of the random start vector(s).
        wall_time_s: wall-clock seconds of the whole estimate.
    """

    lambda_max: float
    eigenvalues: tuple[float, ...]
    method: str
    backend: str
    iterations: int
    hvp_count: int
    relative_residual: float
    error_estimate: float
    converged: bool
    samples: int
    seed: int
    wall_time_s: float

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-safe dict (non-finite floats become ``None``)."""
        return {f.name: _json_safe(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class TraceResult:
    """Hutchinson estimate of the Hessian trace (Yao et al. 2020, PyHessian).

    Attributes:
        trace: mean of ``z^T H z`` over Rademacher probes ``z``.
        stderr: standard error of that mean (sample std / sqrt(probes)); NaN for one probe.
        probes: number of probes (one Hessian-vector product each).
        samples: number of data samples the Hessian was averaged over.
        seed: seed of the probes.
        wall_time_s: wall-clock seconds of the whole estimate.
    """

    trace: float
    stderr: float
    probes: int
    samples: int
    seed: int
    wall_time_s: float

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-safe dict (non-finite floats become ``None``)."""
        return {f.name: _json_safe(getattr(self, f.name)) for f in fields(self)}
