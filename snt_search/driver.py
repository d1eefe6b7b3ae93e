"""The local driver: an Optuna multi-objective study over a space, resumable by name.

``run_study`` opens (or resumes) the study ``study_name`` in ``storage``, runs trials until
``n_trials`` of them have finished (complete or failed with a reason), and returns the Pareto
front. Each trial stores its configuration, metrics, curve and reports as trial attributes,
so optuna-dashboard and ``snt-search pareto`` show everything the terminal did. A trial that
fails (diverged, NaN lambda_max, a plugin refusing the model) is recorded as FAIL with
``fail_reason`` and the study goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from .pareto import front_rows, write_front
from .pipeline import TrialFailed, run_trial
from .progress import StudyProgress
from .registry import Registry, get_registry
from .space import Space, SpaceError
from .specs import PluginError
from .storage import DEFAULT_STORAGE, open_storage
from .trial_spec import TrialSpec, sample

__all__ = ["StudyOptions", "StudyOutcome", "make_sampler", "open_study", "run_study"]


@dataclass(frozen=True)
class StudyOptions:
    """How to run a space: where to store it, how many trials, which budget and device."""

    budget: str = "smoke"
    n_trials: int = 4
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    out_dir: Path | None = None
    data_dir: Path | None = None
    download: bool = True
    device: str = "cpu"
    show_progress: bool = True


@dataclass
class StudyOutcome:
    study_name: str
    storage: str
    ran: int
    finished: int
    failed: int
    front: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def make_sampler(space: Space) -> optuna.samplers.BaseSampler:
    """The sampler the space names, seeded with the space's seed."""
    seed = space.seed
    if space.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if space.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if space.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(space: Space, options: StudyOptions) -> optuna.Study:
    """Create the study or resume it; refuse to mix a different space or budget into it."""
    name = options.study_name or space.name
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        storage=open_storage(options.storage),
        study_name=name,
        directions=[optuna.study.StudyDirection[d.upper()] for d in space.objectives.values()],
        sampler=make_sampler(space),
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
        for key, value in identity.items():
            study.set_user_attr(key, value)
    return study


def _finished(study: optuna.Study) -> tuple[int, int]:
    trials = study.get_trials(deepcopy=False)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    failed = sum(
        t.state == optuna.trial.TrialState.FAIL and "fail_reason" in t.user_attrs for t in trials
    )
    return done, failed


def run_study(
    space: Space,
    options: StudyOptions,
    *,
    registry: Registry | None = None,
    runner: Callable[..., Any] = run_trial,
) -> StudyOutcome:
    """Run (or resume) ``space`` until ``options.n_trials`` trials have finished."""
    registry = registry or get_registry()
    space.check(registry)
    budget = space.budget(options.budget)
    study = open_study(space, options)
    done, failed = _finished(study)
    remaining = max(options.n_trials - done - failed, 0)
    objectives = list(space.objectives)

    def objective(trial: optuna.Trial) -> list[float]:
        spec: TrialSpec = sample(
            space,
            trial,
            budget,
            data_dir=options.data_dir,
            download=options.download,
            device=options.device,
        )
        trial.set_user_attr("config", spec.as_dict())
        label = " ".join(f"{k}={v}" for k, v in spec.plugins.items() if len(space.plugins[k]) > 1)
        progress.start_trial(trial.number, label, spec.train.epochs)
        try:
            result = runner(spec, registry=registry, on_epoch=progress.epoch)
        except (TrialFailed, PluginError) as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            progress.end_trial(None)
            raise
        for key, value in result.metrics.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("curve", result.curve)
        for key, value in result.reports.items():
            trial.set_user_attr(f"{key}_report", value)
        values = [float(result.metrics[m]) for m in objectives]
        progress.end_trial(dict(zip(objectives, values, strict=True)))
        return values

    def record_front(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        study.set_user_attr("pareto_front", [r["trial"] for r in front_rows(study)])

    with StudyProgress(remaining, space.objectives, enabled=options.show_progress) as progress:
        if remaining:
            study.optimize(
                objective,
                n_trials=remaining,
                catch=(TrialFailed, PluginError),
                callbacks=[record_front],
            )
    done_after, failed_after = _finished(study)
    rows = front_rows(study)
    out_dir = options.out_dir or Path("runs") / study.study_name
    files = write_front(rows, out_dir)
    return StudyOutcome(
        study_name=study.study_name,
        storage=options.storage,
        ran=(done_after + failed_after) - (done + failed),
        finished=done_after,
        failed=failed_after,
        front=rows,
        files=files,
    )
