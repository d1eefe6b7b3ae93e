"""Whether a lambda_max estimate may count as an objective value on a study's front.

A study minimises lambda_max, so an estimate that is not the top eigenvalue must never win:

* a **negative** estimate never counts. ``power`` (and ``pyhessian``) return the eigenvalue of
  largest *magnitude*, which is negative when the Hessian's dominant direction is concave;
  minimising it would reward the most concave model, not the flattest;
* an estimate that **did not converge** within ``max_iter`` (``SharpnessResult.converged`` is
  false) does not count while ``[sharpness] require_converged = true`` (the default): its
  error is unknown, so it could sit anywhere on the front.

The trial stays COMPLETE with its values (so they can be seen and compared); the reason is
stored as its ``off_front_reason`` and a violated Optuna constraint keeps it off every front
(see :func:`snt_search.recording.record_result`).
"""

from __future__ import annotations

import math

from ..config import SharpnessConfig
from .result import SharpnessResult

__all__ = ["off_front_reason"]


def off_front_reason(result: SharpnessResult, config: SharpnessConfig) -> str | None:
    """Why ``result`` must not count as a value on the front, with the fix; ``None`` if it may."""
    value = result.lambda_max
    if not math.isfinite(value):
        return f"lambda_max estimate is {value}, not a finite number"
    if value < 0:
        return (
            f"lambda_max estimate {value:.4g} is negative: method {result.method!r} found a "
            f"direction of negative curvature, not the largest eigenvalue of the Hessian, and a "
            f'negative value is no sharpness to minimise. Fix: use method = "lanczos" (the '
            f"algebraically largest eigenvalue) in [sharpness]"
        )
    if config.require_converged and not result.converged:
        return (
            f"lambda_max estimate {value:.4g} did not converge: method {result.method!r} "
            f"stopped after {result.iterations} iterations (max_iter = {config.max_iter}) with "
            f"an estimated relative error of {result.error_estimate:.2g} (tol = {config.tol:g}). "
            f"Fix: raise [sharpness] max_iter or the budget's sharpness_max_iter, or set "
            f"[sharpness] require_converged = false to count such estimates"
        )
    return None
