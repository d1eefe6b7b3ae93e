"""What a trial leaves in the Optuna storage, whichever driver ran it (local or Ray).

A finished trial carries user attributes that optuna-dashboard, ``snt-search pareto`` and the
report read: every metric by name, ``curve`` (one dict per epoch) and ``<stage>_report`` for
each compressor or sharpness report, plus its constraint values (Optuna's ``set_constraint``);
a result that must not count on the front (a negative or unconverged lambda_max) is COMPLETE
with ``off_front_reason`` and a violated constraint.
A trial that ended without a result carries ``fail_reason`` or ``pruned_reason`` and the curve
so far. A trial that was interrupted is queued again with the same parameters and the system
attributes of Optuna's ``RetryFailedTrialCallback`` (``failed_trial``: the original trial's
number, so the repeat finds its checkpoint; ``retry_history``).

The study itself keeps its Pareto front and hypervolume history (:func:`record_study`), and
:func:`finished_counts` says how many trials have finished, for every driver's stopping rule,
and :func:`trials_ahead` how many before a given trial count or may still count, which the
local driver uses to never finish more trials than asked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from . import hypervolume
from .constraints import Constraint, constraint_values
from .optuna_compat import set_constraints_attr
from .pareto import front_trials

__all__ = [
    "finished_counts",
    "record_end",
    "record_result",
    "record_study",
    "requeue",
    "trials_ahead",
]


def record_result(
    trial: optuna.Trial,
    metrics: Mapping[str, Any],
    curve: Sequence[Mapping[str, Any]],
    reports: Mapping[str, Any],
    constraints: Sequence[Constraint] = (),
) -> None:
    """Store a COMPLETE trial's metrics, curve, reports and constraint values on ``trial``.

    A report holding the key ``off_front_reason`` (the sharpness report always does) adds the
    constraint ``off_front:<report>``: 0 when the reason is empty, 1 (violated) when a reason
    is given, which is then also the user attribute ``off_front_reason``. The trial stays
    COMPLETE with its values, and ``study.best_trials`` and every front leave it out. Every
    such trial carries the constraint, so all trials have the same constraint names (Optuna's
    GP sampler requires that).
    """
    for key, value in metrics.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("curve", list(curve))
    reasons: list[str] = []
    values = constraint_values(constraints, dict(metrics))
    for key, value in reports.items():
        trial.set_user_attr(f"{key}_report", value)
        if isinstance(value, Mapping) and "off_front_reason" in value:
            reason = value["off_front_reason"]
            values[f"off_front:{key}"] = 1.0 if reason else 0.0
            reasons += [str(reason)] if reason else []
    if reasons:
        trial.set_user_attr("off_front_reason", "; ".join(reasons))
    if values and hasattr(trial, "set_constraint"):  # Optuna >= 5
        for key, value in values.items():
            trial.set_constraint(key, value)
    elif values:  # pragma: no cover - Optuna 4 reads the ``constraints`` system attribute
        set_constraints_attr(trial, values)


def record_end(trial: optuna.Trial, key: str, why: str, curve: Sequence[Mapping[str, Any]]) -> None:
    """Store why a trial has no result (``key``: ``fail_reason`` or ``pruned_reason``)."""
    trial.set_user_attr(key, why)
    trial.set_user_attr("curve", list(curve))


def requeue(
    study: optuna.Study,
    frozen: FrozenTrial,
    *,
    max_retries: int | None = None,
    as_retry: bool = True,
) -> bool:
    """Queue ``frozen``'s parameters again as a repeat of its original trial.

    ``as_retry``: the trial failed and this repeat counts in ``retry_history`` (False for an
    interruption such as Ctrl-C, which is not the trial's failure). Returns False (and queues
    nothing) once the original trial has ``max_retries`` retries already; ``None``: no limit.
    """
    history = list(frozen.system_attrs.get("retry_history", []))
    if as_retry:
        history.append(frozen.number)
    if max_retries is not None and len(history) > max_retries:
        return False
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=frozen.params,
            distributions=frozen.distributions,
            system_attrs={
                "failed_trial": frozen.system_attrs.get("failed_trial", frozen.number),
                "retry_history": history,
            },
        )
    )
    return True


def finished_counts(study: optuna.Study) -> dict[str, int]:
    """``complete``, ``pruned``, ``failed`` (FAIL with a reason) and their ``total``."""
    counts = {"complete": 0, "pruned": 0, "failed": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif t.state == TrialState.FAIL and "fail_reason" in t.user_attrs:
            counts["failed"] += 1
    counts["total"] = sum(counts.values())
    return counts


_COUNTS_OR_MAY = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def trials_ahead(study: optuna.Study, number: int) -> int:
    """Trials numbered below ``number`` that count towards the target or still may.

    That is those :func:`finished_counts` counts, plus the RUNNING and WAITING ones (they end
    counted unless their worker dies or is interrupted). A worker runs trial ``number`` only
    while this is below the target ``n``: every storage numbers trials in the order it creates
    them, so never more than ``n`` trials that pass it finish (see :mod:`snt_search.driver`).
    """
    ahead = 0
    for t in study.get_trials(deepcopy=False):
        if t.number >= number:
            continue
        if t.state in _COUNTS_OR_MAY or (
            t.state == TrialState.FAIL and "fail_reason" in t.user_attrs
        ):
            ahead += 1
    return ahead


def record_study(study: optuna.Study, _trial: optuna.trial.FrozenTrial | None = None) -> None:
    """Store the Pareto front (:func:`snt_search.pareto.front_trials`, trial numbers
    ascending) and the hypervolume history as study user attributes.

    Each call recomputes both from all trials, so concurrent workers cannot leave them
    inconsistent: the last writer stores the latest state. The history keeps only the trials
    that changed the hypervolume (``[[trial, hv], ...]``) so it stays small.
    """
    if _trial is not None and _trial.state != TrialState.COMPLETE:
        return  # only a completed trial can change the front
    try:
        trials = study.get_trials(deepcopy=False)
        history, reference = hypervolume.history(trials, study.directions)
        steps: list[list[float]] = []
        for point in history:
            if not steps or point["hypervolume"] != steps[-1][1]:
                steps.append([point["trial"], point["hypervolume"]])
        values = {
            "pareto_front": [t.number for t in front_trials(trials, study.directions)],
            "hypervolume_history": steps,
            "hypervolume_reference": reference,
        }
        stored = study.user_attrs
        for key, value in values.items():
            if stored.get(key) != value:
                study.set_user_attr(key, value)
    except Exception as exc:  # bookkeeping must never stop a study; trials hold the truth
        logging.getLogger(__name__).warning("could not store the Pareto front: %s", exc)
