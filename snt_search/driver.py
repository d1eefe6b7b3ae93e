"""The driver: an Optuna multi-objective study over a space, resumable, in one or N processes.

``run_study`` opens (or resumes) the study ``study_name`` in ``storage`` and runs trials until
``n_trials`` of them have *finished*: COMPLETE, PRUNED (early-stopped) or FAIL with a
``fail_reason`` (diverged, NaN lambda_max, a plugin refusing the model, an unexpected error).
A trial whose worker died (Ctrl-C, ``kill -9``) is not finished: it is re-queued with the same
parameters and resumes from its last per-epoch checkpoint, ``<out>/checkpoints/``.

With ``workers=N`` the missing trials are split over N spawned processes sharing the storage
(see :mod:`snt_search.workers`); any number of such commands on any number of machines may
share one study, and together they finish exactly ``n_trials`` trials. Before running a trial
a worker counts the trials numbered below it that have finished or still may (RUNNING or
WAITING: :func:`~snt_search.recording.trials_ahead`); when they already make ``n_trials``,
the trial is *surplus*: it is marked FAIL without running, with the user attribute ``surplus``
and no ``fail_reason`` (so it never counts, and samplers ignore it), and the worker stops.
Storages number trials in the order they create them (RDB storages lock the study's row, a
journal is one ordered log), so of two workers racing for the last trial only the
lower-numbered one runs. If a trial ahead dies instead (``kill -9``), the study ends short of
``n_trials``: workers still running go on, and the same command run again once its
heartbeat is stale (``grace_s``) finishes the study.

Everything a trial measured is stored as its user attributes (configuration, metrics, the
per-epoch curve, reports, the sparsity sweep when present), and the study keeps its Pareto
front (``pareto_front``) and hypervolume history (``hypervolume_history``) as study user
attributes, so optuna-dashboard and ``snt-search pareto`` show everything the terminal did.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from .callbacks import load_callbacks
from .constraints import floors_from_best
from .objective import TrialObjective
from .optuna_compat import TRIAL_LOGGER
from .pareto import FLOORS_ATTR, front_rows, write_front
from .pipeline import run_trial
from .progress import QuietTrialFailures, StudyProgress
from .recording import finished_counts, record_study, trials_ahead
from .registry import Registry, get_registry
from .samplers import make_sampler
from .space import Space, SpaceError
from .storage import DEFAULT_STORAGE, GRACE_S, HEARTBEAT_S, open_storage
from .workers import run_workers, split, threads_per_worker

__all__ = [
    "StudyAborted",
    "StudyOptions",
    "StudyOutcome",
    "finished_counts",
    "make_sampler",
    "open_study",
    "record_study",
    "run_study",
    "run_worker",
]

MAX_UNEXPECTED_IN_A_ROW = 3  # unexpected errors in a row that stop a worker (a bug, not a config)
RESUME_HINT = "run the same command again to resume"
_OPTUNA_TRIAL_LOG = TRIAL_LOGGER  # the logger of Optuna's "Trial N failed" warnings


class StudyAborted(RuntimeError):
    """A worker stopped because trials keep failing in a way that is not the trials' fault."""


@dataclass(frozen=True)
class StudyOptions:
    """How to run a space: where to store it, how many trials, workers, budget and device."""

    budget: str = "smoke"
    n_trials: int = 4  # finished trials the study should have, all workers together
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None  # default: the space's name
    out_dir: Path | None = None  # default: runs/<study name>
    data_dir: Path | None = None
    download: bool = True
    device: str = "cpu"
    show_progress: bool = True
    verbose: bool = False  # keep Optuna's warning (and traceback) for each failed trial
    workers: int = 1  # processes; 1 runs in this process
    heartbeat_s: int = HEARTBEAT_S
    grace_s: int = GRACE_S
    keep_models: str = "front"  # front | all | none: whose models stay stored (docs/export.md)
    artifacts: str | None = None  # model store: a folder or s3://bucket/prefix
    callbacks: tuple[str, ...] = ()  # --callback module:object, Optuna callbacks (callbacks.py)
    track: tuple[str, ...] = ()  # --track tensorboard (trackers.py)
    track_dir: Path | None = None  # default: <out>/tensorboard

    def name(self, space: Space) -> str:
        return self.study_name or space.name

    def out(self, study_name: str) -> Path:
        return self.out_dir or Path("runs") / study_name

    def study_callbacks(self, study_name: str) -> list[Callable[..., None]]:
        """The trackers and ``--callback``s each finished trial is handed to (both drivers)."""
        where = self.track_dir or self.out(study_name) / "tensorboard"
        return load_callbacks(self.callbacks, self.track, where)

    def artifact_store(self, study_name: str) -> str:
        """Where trials keep their models: ``artifacts``, default ``<out>/artifacts``."""
        return self.artifacts or str(self.out(study_name) / "artifacts")


@dataclass
class StudyOutcome:
    study_name: str
    storage: str
    ran: int
    finished: int  # COMPLETE trials in the whole study
    failed: int  # FAIL with a reason (counts towards n_trials, never on the front)
    pruned: int = 0  # early-stopped (counts towards n_trials, never on the front)
    front: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # workers that did not end normally


def open_study(
    space: Space,
    options: StudyOptions,
    *,
    stream: int = 0,
    storage: optuna.storages.BaseStorage | None = None,
) -> optuna.Study:
    """Create the study or resume it; refuse to mix a different space or budget into it.

    ``storage`` reuses an opened storage (default: open ``options.storage``)."""
    name = options.name(space)
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        storage=storage
        or open_storage(options.storage, heartbeat_s=options.heartbeat_s, grace_s=options.grace_s),
        study_name=name,
        directions=[optuna.study.StudyDirection[d.upper()] for d in space.objectives.values()],
        sampler=make_sampler(space, stream),
        load_if_exists=True,
    )
    identity = {"space_fingerprint": space.fingerprint, "budget": options.budget}
    for key, value in identity.items():
        stored = study.user_attrs.get(key)
        if stored is not None and stored != value:
            raise SpaceError(
                f"study {name!r} in {options.storage} was made with {key} {stored!r}, not {value!r}; "
                f"rerun with the same space and budget to resume it, or pass --study-name NEW to "
                f"start a separate study"
            )
    if study.user_attrs.get("space_fingerprint") is None:
        study.set_user_attr("space", space.name)
        study.set_user_attr("space_path", str(space.path))
        study.set_user_attr("objectives", list(space.objectives))
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(space.objectives))  # for optuna-dashboard and plots
        for key, value in identity.items():
            study.set_user_attr(key, value)
    floors = floors_from_best(space.constraints)  # read by pareto.front_trials
    if study.user_attrs.get(FLOORS_ATTR, {}) != floors:
        study.set_user_attr(FLOORS_ATTR, floors)
    return study


def run_study(
    space: Space,
    options: StudyOptions,
    *,
    registry: Registry | None = None,
    runner: Callable[..., Any] = run_trial,
) -> StudyOutcome:
    """Run (or resume) ``space`` until ``options.n_trials`` trials have finished.

    ``runner`` stands in for :func:`~snt_search.pipeline.run_trial` (tests); with
    ``workers > 1`` it must be picklable (a module-level function).
    """
    if options.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {options.workers}")
    registry = registry or get_registry()
    space.check(registry)
    space.budget(options.budget)
    options.study_callbacks(options.name(space))  # a bad --callback fails before any trial
    storage = open_storage(
        options.storage, heartbeat_s=options.heartbeat_s, grace_s=options.grace_s
    )
    study = open_study(space, options, storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # count (and re-queue) trials of dead workers
    before = finished_counts(study)
    remaining = max(options.n_trials - before["total"], 0)
    problems: list[str] = []
    with StudyProgress(
        remaining, space.objectives, enabled=options.show_progress, verbose=options.verbose
    ) as progress:
        progress.resuming(study, before["total"], options.n_trials)
        if remaining and options.workers == 1:
            run_worker(
                space,
                options,
                remaining,
                registry=registry,
                runner=runner,
                progress=progress,
                storage=storage,
            )
        elif remaining:
            shares = split(remaining, options.workers)
            stream0 = len(study.get_trials(deepcopy=False)) + 1
            exits = run_workers(
                _worker_entry,
                [(space, options, q, runner, stream0 + i) for i, q in enumerate(shares)],
                threads=threads_per_worker(len(shares)),
                poll=lambda: progress.show_study(study, before["total"]),
            )
            problems = [e.describe() for e in exits if not e.ok]
    after = finished_counts(study)
    record_study(study)
    rows = front_rows(study)
    files = write_front(rows, options.out(study.study_name))
    return StudyOutcome(
        study_name=study.study_name,
        storage=options.storage,
        ran=after["total"] - before["total"],
        finished=after["complete"],
        failed=after["failed"],
        pruned=after["pruned"],
        front=rows,
        files=files,
        problems=problems,
    )


def _worker_entry(
    space: Space, options: StudyOptions, quota: int, runner: Callable[..., Any], stream: int
) -> None:
    """What a spawned worker runs (module level, so it pickles)."""
    run_worker(space, options, quota, runner=runner, stream=stream)


def run_worker(
    space: Space,
    options: StudyOptions,
    quota: int,
    *,
    registry: Registry | None = None,
    runner: Callable[..., Any] = run_trial,
    progress: StudyProgress | None = None,
    stream: int | None = None,
    storage: optuna.storages.BaseStorage | None = None,
) -> int:
    """Run up to ``quota`` trials of the (existing) study; return how many ran.

    Stops early once the study has ``options.n_trials`` finished trials (other workers count)
    or at a surplus trial, which it fails without running (see the module docstring: the study
    never gets more than ``n_trials`` finished trials), and raises :class:`StudyAborted` after
    ``MAX_UNEXPECTED_IN_A_ROW`` unexpected errors in a row.
    ``stream`` seeds the sampler (default: the number of trials so far); ``storage`` reuses
    an opened storage.
    """
    registry = registry or get_registry()
    name = options.name(space)
    storage = storage or open_storage(
        options.storage, heartbeat_s=options.heartbeat_s, grace_s=options.grace_s
    )
    if stream is None:
        stream = len(optuna.load_study(study_name=name, storage=storage).trials)
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(space, stream))
    objective = TrialObjective(space, options, registry, runner, progress, study)
    guarded = _SurplusGuard(objective, study, options.n_trials)
    optuna_log, keep = logging.getLogger(_OPTUNA_TRIAL_LOG), guarded.keep_record
    quiet = QuietTrialFailures(options.verbose)  # a failed trial is one line (progress.py)
    optuna_log.addFilter(keep)
    optuna_log.addFilter(quiet)
    callbacks: list[Callable[..., None]] = [record_study]
    callbacks += [progress.trial_done] if progress is not None else []
    callbacks += options.study_callbacks(name)  # after the study has recorded the trial
    ran = 0
    try:
        for _ in range(quota):
            if finished_counts(study)["total"] >= options.n_trials:
                break
            study.optimize(guarded, n_trials=1, catch=(Exception,), callbacks=callbacks)
            if guarded.surplus is not None:
                break
            ran += 1
            if objective.unexpected_in_a_row >= MAX_UNEXPECTED_IN_A_ROW:
                raise StudyAborted(
                    f"{objective.unexpected_in_a_row} trials in a row failed with unexpected "
                    f"errors (last: {objective.last_reason}); that looks like a bug or a broken "
                    f"environment rather than a bad configuration. Fix it, then {RESUME_HINT}."
                )
    finally:
        optuna_log.removeFilter(keep)
        optuna_log.removeFilter(quiet)
    return ran


class _Surplus(Exception):
    """Raised for a surplus trial, so that Optuna marks it FAIL: never a result, never counted."""


class _SurplusGuard:
    """The objective, run only for a trial within the study's target (module docstring)."""

    def __init__(self, objective: TrialObjective, study: optuna.Study, n_trials: int) -> None:
        self.objective, self.study, self.n_trials = objective, study, n_trials
        self.surplus: int | None = None  # the number of the trial ended without running

    def __call__(self, trial: optuna.Trial) -> list[float]:
        ahead = trials_ahead(self.study, trial.number)
        if ahead < self.n_trials:
            return self.objective(trial)
        why = (
            f"not run: the {ahead} trials before it had finished or were running or queued, "
            f"and the study asks for {self.n_trials} finished trials (--trials)"
        )
        trial.set_user_attr("surplus", why)
        self.surplus = trial.number
        raise _Surplus(why)

    def keep_record(self, record: logging.LogRecord) -> bool:
        """A logging filter: drop Optuna's "Trial N failed" warnings of the surplus trial."""
        surplus = self.surplus
        return surplus is None or not record.getMessage().startswith(f"Trial {surplus} failed")
