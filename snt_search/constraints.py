"""Constraints on a trial's metrics: a trial outside them is infeasible and never on the front.

A space opts in with a ``[constraints]`` section, one bound per metric::

    [constraints]
    base_accuracy = { min = 20.0 }      # an untrained model loses nothing when pruned:
    train_time_s = { max = 600 }        # keep it off the front

Each bound becomes one Optuna constraint value (feasible when <= 0: ``min - value`` or
``value - max``), set on the trial with ``Trial.set_constraint``. Optuna's samplers steer away
from infeasible trials and ``study.best_trials`` leaves them out.

A floor relative to the best trial, ``base_accuracy = { min_from_best = 5.0 }``, keeps off the
front every trial more than 5 below the highest ``base_accuracy`` among the front's candidates:
an under-trained model (a low lr, too few epochs) often has a small lambda_max and a small drop
for that reason alone. It moves as better trials arrive, so it is applied where the front is
computed (:func:`snt_search.pareto.front_trials`, from the study's ``floors_from_best``
attribute), not stored as a constraint value the sampler reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Constraint", "constraint_values", "floors_from_best", "parse_constraints"]

_BOUND_KEYS = ("min", "max", "min_from_best")


@dataclass(frozen=True)
class Constraint:
    """``low <= metrics[metric] <= high``; either bound may be None. ``from_best``: the metric
    must be at least the best (highest) trial's value minus this (see the module docstring)."""

    metric: str
    low: float | None = None
    high: float | None = None
    from_best: float | None = None

    def values(self, value: float) -> dict[str, float]:
        """Optuna constraint values by name (<= 0 feasible); a non-finite metric violates."""
        out = {}
        if self.low is not None:
            out[f"{self.metric}>={self.low:g}"] = self.low - value if math.isfinite(value) else 1e9
        if self.high is not None:
            out[f"{self.metric}<={self.high:g}"] = (
                value - self.high if math.isfinite(value) else 1e9
            )
        return out


def constraint_values(
    constraints: Iterable[Constraint], metrics: Mapping[str, float]
) -> dict[str, float]:
    """All constraint values of one trial's metrics, by name."""
    out: dict[str, float] = {}
    for c in constraints:
        out.update(c.values(float(metrics[c.metric])))
    return out


def floors_from_best(constraints: Iterable[Constraint]) -> dict[str, float]:
    """Metric -> how far below the best trial's value a front trial may be."""
    return {c.metric: c.from_best for c in constraints if c.from_best is not None}


def parse_constraints(
    table: Mapping[str, Any] | None, metrics: Iterable[str], fail: Callable[[str], Exception]
) -> tuple[Constraint, ...]:
    """Validate a ``[constraints]`` table; ``fail(msg)`` builds the error to raise."""
    if table is None:
        return ()
    if not isinstance(table, Mapping):
        raise fail(f"[constraints] must be a table, got {table!r}")
    known = list(metrics)
    out = []
    for metric, bound in table.items():
        if metric not in known:
            raise fail(f"[constraints] unknown metric {metric!r}; metrics are: {', '.join(known)}")
        if not isinstance(bound, Mapping) or not bound or set(bound) - set(_BOUND_KEYS):
            raise fail(
                f"[constraints] {metric} must be a table with min, max and/or min_from_best, "
                f"e.g. {metric} = {{ min = 20.0 }}; got {bound!r}"
            )
        values = {}
        for key in _BOUND_KEYS:
            value = bound.get(key)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool)
            ):
                raise fail(f"[constraints] {metric}.{key} must be a number, got {value!r}")
            values[key] = None if value is None else float(value)
        if (
            values["min"] is not None
            and values["max"] is not None
            and values["min"] > values["max"]
        ):
            raise fail(f"[constraints] {metric}: min {values['min']:g} > max {values['max']:g}")
        if values["min_from_best"] is not None and values["min_from_best"] < 0:
            raise fail(
                f"[constraints] {metric}.min_from_best must be >= 0 (how far below the best "
                f"trial's {metric} a trial may be), got {values['min_from_best']:g}"
            )
        out.append(Constraint(metric, values["min"], values["max"], values["min_from_best"]))
    return tuple(out)
