"""Stop hopeless trials early: an accuracy floor at an epoch, absolute or relative to the front.

Optuna prunes single-objective trials only, yet in a multi-objective search most compute goes
to trials that are plainly hopeless after an epoch or two (a learning rate that does not
learn). A space opts in with an ``[early_stop]`` section::

    [early_stop]
    at_epoch = 2            # the epoch after which the rule is checked (once)
    min_accuracy = 30.0     # stop if test accuracy (%) is below this ...
    front_fraction = 0.5    # ... or below half the lowest accuracy the current Pareto front's
                            #     trials had at that epoch (needs >= 1 front trial that long)

The rule runs in the training loop's ``on_epoch`` callback and raises :class:`EarlyStopped`;
the driver records the trial as PRUNED with ``pruned_reason`` (it counts as finished and
never enters a front). A budget with fewer epochs than ``at_epoch`` is never stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EarlyStop", "EarlyStopped", "front_floor", "parse_early_stop"]


class EarlyStopped(RuntimeError):
    """Raised from ``on_epoch`` when a trial falls below its floor; the message is the reason."""


@dataclass(frozen=True)
class EarlyStop:
    """An accuracy floor at ``at_epoch``; ``check`` raises :class:`EarlyStopped` below it."""

    at_epoch: int
    min_accuracy: float | None = None
    front_fraction: float | None = None

    def floor(self, front_accuracy: float | None) -> tuple[float, str] | None:
        """The floor in force and where it comes from, or None when no rule applies."""
        floors = []
        if self.min_accuracy is not None:
            floors.append((self.min_accuracy, "min_accuracy"))
        if self.front_fraction is not None and front_accuracy is not None:
            floors.append(
                (
                    self.front_fraction * front_accuracy,
                    f"front_fraction {self.front_fraction:g} x the front's lowest "
                    f"{front_accuracy:.1f}%",
                )
            )
        return max(floors) if floors else None

    def check(self, epoch: int, test_accuracy: float, front_accuracy: float | None) -> None:
        """Raise :class:`EarlyStopped` if ``epoch == at_epoch`` and accuracy is below the floor."""
        if epoch != self.at_epoch:
            return
        floor = self.floor(front_accuracy)
        if floor is not None and not test_accuracy >= floor[0]:  # NaN is below any floor
            raise EarlyStopped(
                f"early-stopped: test accuracy {test_accuracy:.2f}% < {floor[0]:.2f}% "
                f"({floor[1]}) at epoch {epoch}"
            )


def front_floor(curves: Iterable[list[dict[str, Any]]], at_epoch: int) -> float | None:
    """The lowest test accuracy front trials had at ``at_epoch`` (None if none got that far)."""
    values = [
        float(point["test_accuracy"])
        for curve in curves
        for point in curve
        if point.get("epoch") == at_epoch and math.isfinite(float(point["test_accuracy"]))
    ]
    return min(values) if values else None


def parse_early_stop(
    table: Mapping[str, Any] | None, fail: Callable[[str], Exception]
) -> EarlyStop | None:
    """Validate an ``[early_stop]`` table; ``fail(msg)`` builds the error to raise."""
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise fail(f"[early_stop] must be a table, got {table!r}")
    allowed = ("at_epoch", "min_accuracy", "front_fraction")
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise fail(f"[early_stop] unknown key {extra[0]!r}; allowed: {', '.join(allowed)}")
    at_epoch = table.get("at_epoch")
    if not isinstance(at_epoch, int) or isinstance(at_epoch, bool) or at_epoch < 1:
        raise fail(f"[early_stop] at_epoch must be an integer >= 1, got {at_epoch!r}")
    min_accuracy = table.get("min_accuracy")
    front_fraction = table.get("front_fraction")
    if min_accuracy is None and front_fraction is None:
        raise fail("[early_stop] needs min_accuracy (a % floor) and/or front_fraction (0..1)")
    for key, value, high in (
        ("min_accuracy", min_accuracy, 100.0),
        ("front_fraction", front_fraction, 1.0),
    ):
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= high:
            raise fail(f"[early_stop] {key} must be a number in (0, {high:g}], got {value!r}")
    return EarlyStop(
        at_epoch=at_epoch,
        min_accuracy=None if min_accuracy is None else float(min_accuracy),
        front_fraction=None if front_fraction is None else float(front_fraction),
    )
