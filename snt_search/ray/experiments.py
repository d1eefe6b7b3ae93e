"""One Ray Tune experiment per driver run: restore the unfinished one, start new ones, sweep.

The study remembers its current experiment in the attribute ``ray_experiment_state``
(``name``, ``storage_path``, ``done``, and ``aborted`` when the searcher stopped it). An
experiment left unfinished (the driver was stopped or killed) is restored with
``Tuner.restore``; afterwards, trials that an ended experiment asked for but never finished
are failed and queued again (:func:`requeue_orphans`), and new experiments run what is still
missing: one for the study's remaining trials and at most :data:`MAX_FOLLOW_UPS` more for
trials Ray gave up on.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna

from ..driver import RESUME_HINT, StudyOptions, finished_counts
from ..optuna_compat import trial_id
from ..resources import TrialResources
from ..space import Space
from .options import RayOptions
from .record import ATTR_EXPERIMENT, STATE_ATTR, fail_and_requeue

__all__ = ["MAX_FOLLOW_UPS", "aborted", "requeue_orphans", "run_experiments"]

MAX_FOLLOW_UPS = 1  # experiments that re-run trials Ray gave up on, before reporting them


def run_experiments(
    study: optuna.Study,
    space: Space,
    options: StudyOptions,
    ray_options: RayOptions,
    storage_path: str,
) -> list[str]:
    """Finish the study's unfinished experiment, then run new ones for the missing trials.

    Returns the errors of trials Ray gave up on. Their parameters are queued again, and one
    more experiment runs them (and any trial an experiment lost) before this gives up.
    """
    from ray import tune

    errors: list[str] = []
    ended: set[str] = set()  # experiments that can no longer finish a trial
    state = study.user_attrs.get(STATE_ATTR)
    if state and state.get("aborted"):  # rerun after an abort: the cause was fixed
        state = {k: v for k, v in state.items() if k != "aborted"}
        study.set_user_attr(STATE_ATTR, state)
    if state and not state.get("done"):
        where = state.get("storage_path", storage_path)
        path = _join(where, state["name"])
        if tune.Tuner.can_restore(path):
            tuner = tune.Tuner.restore(path, trainable=_trainable(space.resources))
            errors += _fit(tuner, study, state["name"], where)
        ended.add(state["name"])
    requeue_orphans(study, ended)
    for _ in range(1 + MAX_FOLLOW_UPS):
        if finished_counts(study)["total"] >= options.n_trials or aborted(study):
            break
        name = _experiment_name(study.study_name)
        tuner = _new_tuner(study, space, options, ray_options, name, storage_path)
        errors += _fit(tuner, study, name, storage_path)
        ended.add(name)
        requeue_orphans(study, ended)
    return errors


def _new_tuner(
    study: optuna.Study,
    space: Space,
    options: StudyOptions,
    ray_options: RayOptions,
    name: str,
    storage_path: str,
) -> Any:
    from ray import tune

    from .checkpoints import CheckpointPruner
    from .progress import ProgressCallback
    from .searcher import StudySearcher

    searcher = StudySearcher(
        space,
        options,
        experiment=name,
        target=options.n_trials,
        threads=max(int(space.resources.cpus), 1),
        max_failures=ray_options.max_failures,
        stream=len(study.get_trials(deepcopy=False)),  # a fresh random stream per experiment
    )
    return tune.Tuner(
        _trainable(space.resources),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=options.n_trials - finished_counts(study)["total"],
            max_concurrent_trials=ray_options.max_concurrent,
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            failure_config=tune.FailureConfig(max_failures=ray_options.max_failures),
            callbacks=[ProgressCallback(), CheckpointPruner()],
            verbose=0,  # the local driver's display instead (ProgressCallback)
        ),
    )


def _fit(tuner: Any, study: optuna.Study, name: str, storage_path: str) -> list[str]:
    """Run ``tuner`` to the end; mark its experiment done; return its trials' errors.

    Raises ``KeyboardInterrupt`` (experiment left unfinished, to be restored) after Ctrl-C.
    """
    study.set_user_attr(STATE_ATTR, {"name": name, "storage_path": storage_path, "done": False})
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # its header ignores verbose=0 (stdout)
    with _ctrl_c_stops_tune() as interrupted:
        grid = tuner.fit()
    if interrupted.is_set():
        raise KeyboardInterrupt(
            f"Ray experiment {name} was stopped; finished trials are stored: {RESUME_HINT}"
        )
    state = dict(study.user_attrs.get(STATE_ATTR, {}), done=True)  # keep the searcher's abort
    study.set_user_attr(STATE_ATTR, state)
    return [_first_line(e) for e in grid.errors]


@contextmanager
def _ctrl_c_stops_tune() -> Iterator[threading.Event]:
    """Ctrl-C stops Tune its own graceful way (a last snapshot), and is reported back.

    Tune's handler swallows Ctrl-C, and after it the experiment looks finished, so this
    catches Ctrl-C itself and sends Tune the other stop signal it listens to, SIGUSR1. A
    second Ctrl-C raises ``KeyboardInterrupt`` at once.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        yield interrupted  # signals reach the main thread only: Tune's defaults apply
        return

    def on_ctrl_c(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGINT, on_ctrl_c), signal.getsignal(signal.SIGUSR1)
    setting = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGUSR1, previous[1])
        if setting is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = setting


def aborted(study: optuna.Study) -> str | None:
    """Why the searcher stopped the last experiment early (unexpected errors), if it did."""
    reason = study.user_attrs.get(STATE_ATTR, {}).get("aborted")
    return str(reason) if reason else None


def requeue_orphans(study: optuna.Study, experiments: set[str]) -> None:
    """Fail and re-queue RUNNING trials that ended ``experiments`` asked but never finished.

    Only those: trials of the local driver, or of an experiment still running elsewhere, are
    left alone.
    """
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        name = t.user_attrs.get(ATTR_EXPERIMENT)
        if name in experiments:
            fail_and_requeue(
                study,
                trial_id(t),
                f"lost: Ray experiment {name} ended without finishing it (its driver stopped "
                f"before Ray recorded the trial); its parameters are queued again",
            )


def _trainable(resources: TrialResources) -> Any:
    from ray import tune

    from .trainable import train_on_ray

    return tune.with_resources(train_on_ray, resources.as_ray())


def _trial_name(trial: Any) -> str:
    """``trial_00012`` (the Optuna trial number) for Ray's trial names and folders."""
    return f"trial_{int(trial.config['trial']):05d}_{trial.trial_id}"


def _experiment_name(study_name: str) -> str:
    """``<study>-<date>-<time>-<random>``: unique even for two experiments in one second."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", study_name)
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


def _join(storage_path: str, name: str) -> str:
    return f"{storage_path.rstrip('/')}/{name}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[-1] if text else type(error).__name__)[:300]
