"""Constraints on a trial's metrics: a trial outside them is infeasible and never on the front.

A space opts in with a ``[constraints]`` section, one bound per metric::

    [constraints]
    base_accuracy = { min = 20.0 }      # an untrained model loses nothing when pruned:
    train_time_s = { max = 600 }        # keep it off the front

Each bound becomes one Optuna constraint value (feasible when <= 0: ``min - value`` or
``value - max``), set on the trial with ``Trial.set_constraint``. Optuna's samplers steer away
from infeasible trials and ``study.best_trials`` leaves them out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Constraint", "constraint_values", "parse_constraints"]


@dataclass(frozen=True)
class Constraint:
    """``low <= metrics[metric] <= high``; either bound may be None."""

    metric: str
    low: float | None = None
    high: float | None = None

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
        if not isinstance(bound, Mapping) or not bound or set(bound) - {"min", "max"}:
            raise fail(
                f"[constraints] {metric} must be a table with min and/or max, e.g. "
                f"{metric} = {{ min = 20.0 }}; got {bound!r}"
            )
        values = {}
        for key in ("min", "max"):
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
        out.append(Constraint(metric, values["min"], values["max"]))
    return tuple(out)
