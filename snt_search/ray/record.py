"""Writing Ray trials into the Optuna study so that they read exactly like local ones.

A trial's outcome (see :mod:`snt_search.ray.trainable`) is stored with the local driver's
attributes: ``config``, every metric, ``curve``, ``<stage>_report`` and constraint values for
a COMPLETE trial; ``fail_reason`` or ``pruned_reason`` with the curve so far otherwise. Where
it ran is added (and the models the worker stored, linked as the local driver's are:
``model_artifacts``, ``model_store``, ``model_missing``): ``ray_experiment``, ``ray_trial_id``, ``worker``, ``ray_node_id``,
``ray_node_ip``, ``ray_attempts`` (one entry per start: node, epoch it resumed from) and
``resumed_from_epoch``.

A trial Ray could not finish (its retries ran out, or the driver stopped before Ray recorded
it) is failed with ``ray_error``, never ``fail_reason``: it has no result and does not count
as finished. Its parameters are queued again the way the local driver and Optuna's
``RetryFailedTrialCallback`` do it (system attributes ``failed_trial``, ``retry_history``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from ..constraints import Constraint
from ..export.artifacts import settle_written_models
from ..optuna_compat import study_storage
from ..recording import record_end, record_result, requeue

__all__ = ["ATTR_EXPERIMENT", "MAX_REQUEUE", "STATE_ATTR", "fail_and_requeue", "record_outcome"]

ATTR_EXPERIMENT = "ray_experiment"  # trial attr: the Ray experiment that asked the trial
STATE_ATTR = "ray_experiment_state"  # study attr: {"name", "storage_path", "done", "aborted"}
MAX_REQUEUE = 2  # a trial Ray could not finish is queued again at most this many times


def record_outcome(
    study: optuna.Study,
    trial: optuna.Trial,
    outcome: Mapping[str, Any],
    objectives: Sequence[str],
    constraints: Sequence[Constraint] = (),
    keep_models: str = "none",
) -> TrialState:
    """Store what ``train_on_ray`` returned on ``trial`` and tell the study; return the state.

    Models the worker wrote (``outcome["models"]``) are linked to the trial or removed as
    ``keep_models`` says (:func:`~snt_search.export.artifacts.settle_written_models`)."""
    for key in ("fail_reason", "pruned_reason"):
        if key in outcome:
            record_end(trial, key, str(outcome[key]), outcome.get("curve", []))
            state = TrialState.FAIL if key == "fail_reason" else TrialState.PRUNED
            study.tell(trial, state=state, skip_if_finished=True)
            return state
    metrics = dict(outcome["metrics"])
    record_result(
        trial, metrics, outcome.get("curve", []), dict(outcome.get("reports", {})), constraints
    )
    values = [float(metrics[m]) for m in objectives]
    if outcome.get("models") and keep_models != "none":
        settle_written_models(study, trial, values, dict(outcome["models"]), keep_models)
    study.tell(trial, values, skip_if_finished=True)
    return TrialState.COMPLETE


def fail_and_requeue(study: optuna.Study, trial_id: int, reason: str) -> bool:
    """Fail a RUNNING trial with ``ray_error = reason`` and queue its parameters again.

    ``trial_id`` is the storage id (a trial asked by an earlier process has no live handle).
    Returns whether a retry was queued: not when the trial had already finished, nor after
    :data:`MAX_REQUEUE` retries of the same original trial.
    """
    storage = study_storage(study)  # the public path needs a live Trial; see the docstring
    frozen = storage.get_trial(trial_id)
    if frozen.state != TrialState.RUNNING:
        return False
    storage.set_trial_user_attr(trial_id, "ray_error", reason)
    study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
    return requeue(study, frozen, max_retries=MAX_REQUEUE)
