"""Spearman's rho and its confidence interval: agree with scipy, degrade clearly on little data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from snt_search.report.stats import spearman


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]),  # a tie in y
        ([176.1, 2.4, 26.8, 105.6, 15.2, 39.4], [9.1, 5.0, 6.2, 8.8, 4.9, 7.7]),
        ([1, 1, 2, 2, 3, 3, 4], [7, 6, 5, 5, 4, 2, 1]),  # ties on both sides, negative
    ],
)
def test_rho_and_p_agree_with_scipy(x: list[float], y: list[float]) -> None:
    ours = spearman(x, y)
    ref = stats.spearmanr(x, y)
    assert ours.rho == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.n == len(x) and ours.dropped == 0


def test_known_value() -> None:
    # rank differences d = (0, 0, 1, 1, 0): rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 12 / 120
    assert spearman([1, 2, 3, 4, 5], [1, 2, 4, 3, 5]).rho == pytest.approx(0.9)


@pytest.mark.parametrize("method", ["fisher", "bootstrap"])
def test_interval_contains_the_estimate_and_narrows_with_n(method: str) -> None:
    rng = np.random.default_rng(1)
    widths = []
    for n in (12, 200):
        x = rng.normal(size=n)
        y = x + rng.normal(scale=1.0, size=n)
        c = spearman(x.tolist(), y.tolist(), method=method, n_boot=500)
        assert c.has_ci and c.low <= c.rho <= c.high
        assert -1.0 <= c.low and c.high <= 1.0
        widths.append(c.high - c.low)
    assert widths[1] < widths[0] / 2


def test_fisher_interval_matches_the_formula() -> None:
    x, y = list(range(10)), [0, 2, 1, 4, 3, 6, 5, 8, 9, 7]
    c = spearman(x, y, confidence=0.9)
    z, se = math.atanh(c.rho), math.sqrt((1 + c.rho**2 / 2) / (10 - 3))
    q = stats.norm.ppf(0.95)
    assert (c.low, c.high) == pytest.approx((math.tanh(z - q * se), math.tanh(z + q * se)))


def test_bootstrap_is_seeded() -> None:
    x, y = [1.0, 3, 2, 5, 4, 7, 6, 8], [2.0, 1, 4, 3, 6, 8, 5, 7]
    a = spearman(x, y, method="bootstrap", seed=3)
    b = spearman(x, y, method="bootstrap", seed=3)
    assert (a.low, a.high) == (b.low, b.high)


def test_too_little_data_gives_nan_with_a_reason() -> None:
    for n in (0, 1, 2):
        c = spearman(list(range(n)), list(range(n)))
        assert math.isnan(c.rho) and not c.has_ci and "at least 3" in c.note
        assert "not available" in c.describe()
    three = spearman([1, 2, 3], [1, 3, 2])
    assert three.rho == pytest.approx(0.5) and not three.has_ci and "4 pairs" in three.note
    assert "no CI" in three.describe()
    assert spearman([1, 2, 3], [1, 3, 2], method="bootstrap").n == 3


def test_non_finite_pairs_are_dropped_and_counted() -> None:
    c = spearman([1, 2, math.inf, 3, 4, math.nan, 5], [1, 2, 3, 3, 4, 0, 5])
    assert c.n == 5 and c.dropped == 2 and c.rho == pytest.approx(1.0)
    assert (c.low, c.high) == (1.0, 1.0) and c.p_value == 0.0


def test_constant_variable() -> None:
    c = spearman([1, 2, 3, 4], [7, 7, 7, 7])
    assert math.isnan(c.rho) and "constant" in c.note
    assert c.as_dict()["rho"] is None  # JSON-safe


def test_bad_arguments_say_what_to_pass() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        spearman([1, 2], [1])
    with pytest.raises(ValueError, match="'fisher' or 'bootstrap'"):
        spearman([1, 2, 3], [1, 2, 3], method="kendall")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        spearman([1, 2, 3], [1, 2, 3], confidence=95)
