"""What a trial leaves in the Optuna storage, whichever driver ran it (local or Ray).

A finished trial carries user attributes that optuna-dashboard, ``snt-search pareto`` and the
report read: every metric by name, ``curve`` (one dict per epoch) and ``<stage>_report`` for
each compressor or sharpness report, plus its constraint values (Optuna's ``set_constraint``).
A trial that ended without a result carries ``fail_reason`` or ``pruned_reason`` and the curve
so far. A trial that was interrupted is queued again with the same parameters and the system
attributes of Optuna's ``RetryFailedTrialCallback`` (``failed_trial``: the original trial's
number, so the repeat finds its checkpoint; ``retry_history``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from .constraints import Constraint, constraint_values

__all__ = ["record_end", "record_result", "requeue"]


def record_result(
    trial: optuna.Trial,
    metrics: Mapping[str, Any],
    curve: Sequence[Mapping[str, Any]],
    reports: Mapping[str, Any],
    constraints: Sequence[Constraint] = (),
) -> None:
    """Store a COMPLETE trial's metrics, curve, reports and constraint values on ``trial``."""
    for key, value in metrics.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("curve", list(curve))
    for key, value in reports.items():
        trial.set_user_attr(f"{key}_report", value)
    values = constraint_values(constraints, dict(metrics))
    if values and hasattr(trial, "set_constraint"):  # Optuna >= 5
        for key, value in values.items():
            trial.set_constraint(key, value)
    elif values:  # pragma: no cover - Optuna 4 reads the ``constraints`` system attribute
        trial.storage.set_trial_system_attr(trial._trial_id, "constraints", tuple(values.values()))


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
