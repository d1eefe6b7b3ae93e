"""The Pareto front of a study: the one rule, rows for people (tables), files for tools.

:func:`front_trials` is the front everywhere in snt-search (``snt-search pareto``, the
``pareto_front`` stored with the study, its hypervolume, the report): the non-dominated trials
among the *eligible* ones: COMPLETE, feasible (every constraint value stored with the trial
is <= 0, Optuna's rule) and with all objective values finite. An infeasible trial or one with
NaN or infinity never enters the front, nor hides a trial that does: it is left out before
domination is decided. When the front is empty, :func:`empty_front_reason` says why.
"""

from __future__ import annotations

import csv
import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from .optuna_compat import constraint_values

__all__ = [
    "eligible",
    "empty_front_reason",
    "feasible",
    "front_header",
    "front_rows",
    "front_trials",
    "objective_names",
    "write_csv",
    "write_front",
]

# The study attribute holding [constraints] floors relative to the best trial (metric -> X).
FLOORS_ATTR = "floors_from_best"

# Trial attributes shown beside the objectives when present.
DETAIL_ATTRS = (
    "base_accuracy",
    "compressed_accuracy",
    "accuracy_drop",
    "lambda_max",
    "train_time_s",
)


def objective_names(study: optuna.Study) -> list[str]:
    """The metric names the driver stored with the study (``objective_i`` for foreign studies)."""
    names = study.user_attrs.get("objectives")
    if isinstance(names, list) and len(names) == len(study.directions):
        return [str(n) for n in names]
    return [f"objective_{i}" for i in range(len(study.directions))]


def feasible(trial: FrozenTrial) -> bool:
    """True when no constraint value stored with ``trial`` is above 0 (none stored: True)."""
    return all(v <= 0 for v in constraint_values(trial).values())


def eligible(trial: FrozenTrial) -> bool:
    """True for a trial that may be on the front: COMPLETE, feasible, all values finite."""
    return (
        trial.state == TrialState.COMPLETE
        and trial.values is not None
        and all(math.isfinite(v) for v in trial.values)
        and feasible(trial)
    )


def front_trials(
    study: optuna.Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection] | None = None,
) -> list[FrozenTrial]:
    """The Pareto front: trials that :func:`eligible` and no other such trial dominates.

    ``study``: a study, or its trials with ``directions``. Trials with equal values are all on
    the front. Sorted by trial number.
    """
    trials, directions = _trials(study, directions)
    kept = sorted((t for t in trials if eligible(t)), key=lambda t: t.number)
    if isinstance(study, optuna.Study):
        kept = within_floors(kept, study.user_attrs.get(FLOORS_ATTR) or {})
    if not kept:
        return []
    sign = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
    points = np.array([sign * np.asarray(t.values, dtype=float) for t in kept])
    if points.shape[1] != len(directions):
        raise ValueError(
            f"trials carry {points.shape[1]} objective values but the study has "
            f"{len(directions)} directions; pass the directions of the study they belong to"
        )
    dominated = [
        bool(np.any(np.all(points <= p, axis=1) & np.any(points < p, axis=1))) for p in points
    ]
    return [t for t, d in zip(kept, dominated, strict=True) if not d]


def within_floors(trials: list[FrozenTrial], floors: Mapping[str, float]) -> list[FrozenTrial]:
    """``trials`` whose metric is at most ``floors[metric]`` below the highest among them
    (``[constraints] metric = { min_from_best = X }``); a trial without the metric is dropped."""
    for metric, below in floors.items():
        values = [t.user_attrs.get(metric) for t in trials]
        finite = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
        if not finite:
            return []
        floor = max(finite) - float(below)
        trials = [
            t
            for t, v in zip(trials, values, strict=True)
            if isinstance(v, int | float) and math.isfinite(v) and v >= floor
        ]
    return trials


def empty_front_reason(study: optuna.Study | Sequence[FrozenTrial]) -> str:
    """Why :func:`front_trials` of ``study`` (a study or its trials) is empty: no COMPLETE
    trial yet, or each one is infeasible or has a non-finite objective value (how many, and
    which constraints they violate, each with the number of trials violating it)."""
    trials = study.get_trials(deepcopy=False) if isinstance(study, optuna.Study) else study
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    if not complete:
        return "no finished trial yet"
    violated: dict[str, int] = {}
    infeasible = nonfinite = 0
    for t in complete:
        over = [k for k, v in constraint_values(t).items() if v > 0]
        infeasible += bool(over)
        nonfinite += not all(math.isfinite(v) for v in t.values)
        for key in over:
            violated[key] = violated.get(key, 0) + 1
    which = ", ".join(f"{k} ({n} of {len(complete)})" for k, n in sorted(violated.items()))
    if infeasible == len(complete):
        return (
            f"no feasible trial: all {len(complete)} complete trials violate a constraint: {which}"
        )
    if nonfinite == len(complete):
        return (
            f"no trial with finite objective values: all {len(complete)} complete trials "
            f"have NaN or infinite ones"
        )
    return (
        f"no feasible trial with finite objective values among {len(complete)} complete "
        f"trials: {infeasible} violate a constraint ({which}), {nonfinite} have NaN or "
        f"infinite objective values"
    )


def front_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One dict per trial of :func:`front_trials`: number, objective values, choices, metrics.

    A trial of a study with ``[study] seeds > 1`` also has ``<objective>_std``, the standard
    deviation of that objective across its seeds (its values are the means)."""
    names = objective_names(study)
    rows = []
    for t in front_trials(study):
        assert t.values is not None
        row: dict[str, Any] = {"trial": t.number}
        row.update(dict(zip(names, t.values, strict=True)))
        spread = t.user_attrs.get("seeds_report", {}).get("std", {})  # [study] seeds > 1
        row.update({f"{n}_std": spread[n] for n in names if n in spread})
        for attr in DETAIL_ATTRS:
            if attr in t.user_attrs and attr not in row:
                row[attr] = t.user_attrs[attr]
        row.update({f"param:{k}": v for k, v in sorted(t.params.items())})
        rows.append(row)
    return rows


def write_front(
    rows: list[dict[str, Any]], out_dir: Path, header: Sequence[str] = ()
) -> list[Path]:
    """Write ``pareto.json`` and ``pareto.csv`` into ``out_dir``; return their paths.

    ``header``: see :func:`write_csv`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out_dir / "pareto.json", out_dir / "pareto.csv"
    _atomic_write(json_path, json.dumps(rows, indent=2, default=str) + "\n")
    return [json_path, write_csv(rows, csv_path, header)]


def front_header(study: optuna.Study) -> list[str]:
    """The columns every front row of ``study`` starts with: ``trial`` and the objectives."""
    return ["trial", *objective_names(study)]


def write_csv(rows: list[dict[str, Any]], path: Path, header: Sequence[str] = ()) -> Path:
    """Write ``rows`` as CSV (columns: ``header``, then the rows' other keys in first-seen
    order); with no rows, the file still holds the header row (e.g. :func:`front_header`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = list(header)
    for row in rows:
        columns += [c for c in row if c not in columns]
    tmp = _tmp_path(path)
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def _trials(
    study: optuna.Study | Sequence[FrozenTrial], directions: Sequence[StudyDirection] | None
) -> tuple[Sequence[FrozenTrial], Sequence[StudyDirection]]:
    if isinstance(study, optuna.Study):
        return study.get_trials(deepcopy=False), study.directions
    if directions is None:
        raise TypeError("front_trials(trials, directions): pass the study's directions too")
    return study, directions


def _tmp_path(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process and thread: several commands
    sharing a study write the same files at the end, and must not move each other's."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _atomic_write(path: Path, text: str) -> None:
    tmp = _tmp_path(path)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
