"""Spearman's rank correlation with a confidence interval, for "flatter loses less".

The paper's claim (Sec. 6: "the sharpness of the loss surface is a sufficient proxy metric
for compressibility") predicts a *positive* rank correlation between lambda_max and the
accuracy drop. :func:`spearman` measures it on finished trials and says how sure it is:

- ``method="fisher"`` (default): Fisher's z transform with the Bonett & Wright (2000)
  variance for Spearman's rho, ``se = sqrt((1 + rho**2 / 2) / (n - 3))``; needs n >= 4.
  Deterministic and cheap.
- ``method="bootstrap"``: percentile interval of rho over ``n_boot`` resamples of the
  (x, y) pairs drawn with ``seed``; needs n >= 3; resamples with a constant variable are
  skipped.

Rho is Pearson's correlation of the average ranks (ties get their mean rank); the p-value is
the two-sided t approximation with n - 2 degrees of freedom (as ``scipy.stats.spearmanr``).
Pairs with a non-finite member are dropped first and counted in ``dropped``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["METHODS", "Correlation", "spearman"]

METHODS = ("fisher", "bootstrap")


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho of ``n`` pairs with a ``confidence`` interval ``[low, high]``.

    ``rho``, ``low``, ``high`` and ``p_value`` are NaN when they cannot be computed; ``note``
    then says why (too few pairs, a constant variable). The Fisher interval always holds
    ``rho``; the bootstrap percentile interval does for all but very skewed samples.
    """

    rho: float
    low: float
    high: float
    p_value: float
    n: int
    dropped: int
    method: str
    confidence: float
    note: str = ""

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def describe(self) -> str:
        """One line for people, e.g. ``rho = 0.62 [0.21, 0.85] (95% CI, Fisher z), n = 12``."""
        if not math.isfinite(self.rho):
            return f"rho not available (n = {self.n}): {self.note}"
        how = "Fisher z" if self.method == "fisher" else "bootstrap"
        ci = (
            f" [{self.low:.2f}, {self.high:.2f}] ({self.confidence:.0%} CI, {how})"
            if self.has_ci
            else " (no CI: " + self.note + ")"
        )
        p = f", p = {self.p_value:.3g}" if math.isfinite(self.p_value) else ""
        return f"rho = {self.rho:.2f}{ci}, n = {self.n}{p}"

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def spearman(
    x: Sequence[float],
    y: Sequence[float],
    *,
    method: str = "fisher",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> Correlation:
    """Spearman's rho of the finite pairs of ``x`` and ``y`` with a ``confidence`` interval.

    Raises ValueError for unequal lengths, an unknown ``method`` or a ``confidence`` outside
    (0, 1); never raises for too little data (the result carries NaN and a ``note``).
    """
    if len(x) != len(y):
        raise ValueError(
            f"spearman needs pairs: x has {len(x)} values, y has {len(y)}; pass equal lengths"
        )
    if method not in METHODS:
        raise ValueError(
            f"CI method {method!r} is not one of {METHODS}; use 'fisher' or 'bootstrap'"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence!r} must lie in (0, 1), e.g. 0.95")
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n, dropped = int(keep.sum()), int((~keep).sum())

    def result(rho: float, low: float, high: float, p: float, note: str = "") -> Correlation:
        return Correlation(rho, low, high, p, n, dropped, method, confidence, note)

    nan = math.nan
    if n < 3:
        return result(nan, nan, nan, nan, f"needs at least 3 finite pairs, has {n}")
    rho = _rho(xa, ya)
    if not math.isfinite(rho):
        return result(nan, nan, nan, nan, "one variable is constant, so ranks carry no order")
    p = _p_value(rho, n)
    if method == "fisher":
        if n < 4:
            return result(rho, nan, nan, p, f"Fisher z needs at least 4 pairs, has {n}")
        low, high = _fisher_ci(rho, n, confidence)
    else:
        low, high = _bootstrap_ci(xa, ya, confidence, n_boot, seed)
    return result(rho, low, high, p)


def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based); tied values share the mean of their ranks."""
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=float)
    ranks[order] = np.arange(1, len(a) + 1, dtype=float)
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return np.asarray(sums[inverse] / counts[inverse], dtype=float)


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    if denom == 0.0:
        return math.nan
    return max(-1.0, min(1.0, float((rx * ry).sum()) / denom))


def _p_value(rho: float, n: int) -> float:
    from scipy import stats

    if n < 3:
        return math.nan
    if abs(rho) >= 1.0:
        return 0.0
    t = rho * math.sqrt((n - 2) / ((1.0 - rho) * (1.0 + rho)))
    return float(2.0 * stats.t.sf(abs(t), n - 2))


def _fisher_ci(rho: float, n: int, confidence: float) -> tuple[float, float]:
    from scipy import stats

    if abs(rho) >= 1.0:
        return rho, rho
    z = math.atanh(rho)
    se = math.sqrt((1.0 + rho * rho / 2.0) / (n - 3))
    q = float(stats.norm.ppf(0.5 + confidence / 2.0))
    return math.tanh(z - q * se), math.tanh(z + q * se)


def _bootstrap_ci(
    x: np.ndarray, y: np.ndarray, confidence: float, n_boot: int, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = len(x)
    rhos = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        r = _rho(x[idx], y[idx])
        if math.isfinite(r):
            rhos.append(r)
    if not rhos:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(rhos), [alpha, 1.0 - alpha])
    return float(low), float(high)
