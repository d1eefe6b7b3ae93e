"""Hypervolume of a front and its history over a study's trials.

The hypervolume is the area (volume, with more objectives) that a front dominates up to a
reference point: one number that grows as the front improves, used to compare samplers and to
see whether a study still progresses. Objectives to maximize are negated so that all are
minimized. Only the trials :func:`snt_search.pareto.eligible` counts (COMPLETE, feasible, finite)
enter, so the front is :func:`snt_search.pareto.front_trials`'s. The computation is Optuna's
(reached through :func:`snt_search.optuna_compat.compute_hypervolume`).

A history only compares with itself when the reference point stays fixed: :func:`history`
takes one (e.g. from :func:`reference_point`, the worst finite value of each objective over
the trials, pushed out by 10% of its range) and returns the hypervolume after each trial.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from .optuna_compat import compute_hypervolume
from .pareto import eligible, front_trials

__all__ = ["front_numbers", "history", "hypervolume", "minimized", "reference_point"]


def minimized(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]
) -> list[tuple[int, np.ndarray]]:
    """``(trial number, values as minimization)`` of the eligible trials (COMPLETE, feasible,
    finite: :func:`snt_search.pareto.eligible`), by number."""
    sign = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
    return [
        (t.number, sign * np.asarray(t.values, dtype=float))
        for t in sorted(trials, key=lambda t: t.number)
        if eligible(t)
    ]


def front_numbers(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[int]:
    """Numbers of the trials of :func:`snt_search.pareto.front_trials`, ascending."""
    return [t.number for t in front_trials(trials, directions)]


def reference_point(points: Sequence[np.ndarray], margin: float = 0.1) -> np.ndarray | None:
    """The worst value of each objective plus ``margin`` times its range (None: no points)."""
    if not points:
        return None
    arr = np.stack(points)
    worst, best = arr.max(axis=0), arr.min(axis=0)
    span = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1.0))
    return worst + margin * span


def hypervolume(points: Sequence[np.ndarray], reference: np.ndarray) -> float:
    """Hypervolume dominated by ``points`` (minimization) up to ``reference``.

    Points not strictly better than the reference in every objective add nothing.
    """
    inside = [p for p in points if np.all(p < reference)]
    if not inside:
        return 0.0
    return compute_hypervolume(np.stack(inside), reference)


def history(
    study: optuna.Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection] | None = None,
    reference: np.ndarray | None = None,
) -> tuple[list[dict[str, float]], list[float] | None]:
    """``([{"trial": n, "hypervolume": hv}, ...], reference)`` after each counted trial.

    ``reference`` defaults to :func:`reference_point` of all counted trials. Cost: one
    hypervolume per trial, each over the running front only (cheap in 2-3 objectives).
    """
    if isinstance(study, optuna.Study):
        trials: Sequence[FrozenTrial] = study.get_trials(deepcopy=False)
        directions = study.directions
    else:
        trials = study
    assert directions is not None, "pass the study's directions with a list of trials"
    points = minimized(trials, directions)
    ref = reference if reference is not None else reference_point([p for _, p in points])
    if ref is None:
        return [], None
    front: list[np.ndarray] = []
    out = []
    for number, p in points:
        if not any(np.all(q <= p) for q in front):
            front = [q for q in front if not np.all(p <= q)] + [p]
        out.append({"trial": number, "hypervolume": hypervolume(front, ref)})
    return out, [float(x) for x in ref]
