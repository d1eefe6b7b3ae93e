"""The Optuna objective of a study: one trial = sample a spec, train it, store what it measured.

:class:`TrialObjective` samples a :class:`~snt_search.trial_spec.TrialSpec` from the space,
runs it (``run_trial`` by default) with a per-epoch checkpoint under
``<out>/checkpoints/`` that a repeat of the trial resumes from, applies the space's early-stop
rule after each epoch, and records the outcome (:mod:`snt_search.recording`): the objectives'
values for a COMPLETE trial; ``fail_reason`` (diverged, NaN objective, a plugin refusing the
model, an unexpected error) or ``pruned_reason`` otherwise. A COMPLETE trial keeps its trained
and compressed models as Optuna artifacts as ``--keep-models`` says
(:mod:`snt_search.export.artifacts`); a failed upload fails the trial. Ctrl-C queues the trial
again and propagates. The driver (:mod:`snt_search.driver`) counts unexpected errors in a row.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import os
import re
import socket
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from .checkpoint import read_metadata
from .early_stop import EarlyStopped, front_floor
from .export.artifacts import (
    KEEP_MODELS,
    MISSING_ATTR,
    drop_models_off_front,
    finishing,
    front_numbers,
    keep_trial_models,
)
from .optuna_compat import stored_trial
from .pareto import front_trials
from .pipeline import TrialFailed
from .progress import PHASE_ATTR, StudyProgress
from .recording import record_end, record_result, requeue
from .registry import Registry
from .space import Space
from .specs import PluginError
from .training import EpochStats
from .trial_spec import TrialSpec, sample

if TYPE_CHECKING:
    from .driver import StudyOptions

__all__ = ["TrialObjective"]


class TrialObjective:
    """The Optuna objective: sample a spec, run it with a checkpoint, store what it measured."""

    def __init__(
        self,
        space: Space,
        options: StudyOptions,
        registry: Registry,
        runner: Callable[..., Any],
        progress: StudyProgress | None,
        study: optuna.Study,
    ) -> None:
        self.space, self.options, self.registry = space, options, registry
        self.runner, self.progress, self.study = runner, progress, study
        self.budget = space.budget(options.budget)
        self.objectives = list(space.objectives)
        self.checkpoints = options.out(study.study_name) / "checkpoints"
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.unexpected_in_a_row = 0
        self.last_reason = ""
        self._phases = _takes(runner, "on_phase")  # run_trial does; a test's stand-in may not
        if options.keep_models not in KEEP_MODELS:
            raise ValueError(
                f"--keep-models must be one of {', '.join(KEEP_MODELS)}, got "
                f"{options.keep_models!r}"
            )

    def __call__(self, trial: optuna.Trial) -> list[float]:
        space, options = self.space, self.options
        spec: TrialSpec = sample(
            space,
            trial,
            self.budget,
            data_dir=options.data_dir,
            download=options.download,
            device=options.device,
        )
        trial.set_user_attr("config", spec.as_dict())
        trial.set_user_attr("worker", self.worker)
        checkpoint = self.checkpoint_path(trial, spec)
        if checkpoint.is_file():
            trial.set_user_attr("resumed_from_epoch", int(read_metadata(checkpoint)["epoch"]))
        label = " ".join(f"{k}={v}" for k, v in spec.plugins.items() if len(space.plugins[k]) > 1)
        if self.progress:
            self.progress.start_trial(trial.number, label, spec.train.epochs)
        curve: list[dict[str, Any]] = []
        rule = space.early_stop
        front_accuracy = None
        if rule is not None and rule.front_fraction is not None:
            front = [t.user_attrs.get("curve", []) for t in front_trials(self.study)]
            front_accuracy = front_floor(front, rule.at_epoch)

        shared = options.workers > 1  # a worker process: the parent reads the phase stored

        def on_phase(name: str) -> None:
            if self.progress:
                self.progress.phase(name)
            if shared:
                trial.set_user_attr(PHASE_ATTR, name)

        def on_epoch(stats: EpochStats) -> None:
            curve.append(asdict(stats))
            if self.progress:
                self.progress.epoch(stats)
            if shared:
                on_phase(f"epoch {stats.epoch}/{spec.train.epochs}")
            if rule is not None:
                rule.check(stats.epoch, stats.test_accuracy, front_accuracy)

        try:
            phases = {"on_phase": on_phase} if self._phases else {}
            result = self.runner(
                spec, registry=self.registry, on_epoch=on_epoch, checkpoint=checkpoint, **phases
            )
            values = [float(result.metrics[m]) for m in self.objectives]
            bad = [m for m, v in zip(self.objectives, values, strict=True) if not math.isfinite(v)]
            if bad:
                raise TrialFailed(f"objective {bad[0]} is {result.metrics[bad[0]]}: not a result")
        except KeyboardInterrupt:
            self._requeue(trial)  # the next run resumes it from its checkpoint
            raise
        except EarlyStopped as exc:
            self._end(trial, checkpoint, curve, "pruned_reason", str(exc))
            raise optuna.TrialPruned(str(exc)) from exc
        except (TrialFailed, PluginError) as exc:
            self._end(trial, checkpoint, curve, "fail_reason", f"{type(exc).__name__}: {exc}")
            raise
        except Exception as exc:
            self.unexpected_in_a_row += 1
            self.last_reason = f"{type(exc).__name__}: {exc}"
            self._end(trial, checkpoint, curve, "fail_reason", self.last_reason)
            raise
        record_result(trial, result.metrics, result.curve, result.reports, space.constraints)
        try:
            self._keep_models(trial, spec, result, values)
        except Exception as exc:  # counts as unexpected: a broken store fails every trial
            self.unexpected_in_a_row += 1
            self.last_reason = (
                f"TrialFailed: could not store the trial's models in "
                f"{options.artifact_store(self.study.study_name)}: {type(exc).__name__}: {exc}. "
                "Fix: make the store writable (--artifacts), or run with --keep-models none"
            )
            self._end(trial, checkpoint, curve, "fail_reason", self.last_reason)
            raise TrialFailed(self.last_reason) from exc
        self.unexpected_in_a_row = 0
        _remove_checkpoint(checkpoint)
        if self.progress:
            self.progress.end_trial(dict(zip(self.objectives, values, strict=True)))
        return values

    def _keep_models(
        self, trial: optuna.Trial, spec: TrialSpec, result: Any, values: list[float]
    ) -> None:
        """Store the trial's models as Optuna artifacts as ``--keep-models`` says (front: only
        while on the Pareto front; all; none), then drop the models of trials it dominates."""
        keep, models = self.options.keep_models, getattr(result, "models", None)
        if keep == "none" or not models:
            return
        pending = finishing(stored_trial(trial), values)
        if keep == "all" or trial.number in front_numbers(self.study, pending):
            store = self.options.artifact_store(self.study.study_name)
            keep_trial_models(trial, spec, result, store, registry=self.registry)
        else:
            why = (
                "it was off the Pareto front when it finished, and the study keeps the front's "
                "models only (--keep-models front). Fix: export a trial on the front, or run "
                "with --keep-models all"
            )
            trial.set_user_attr(MISSING_ATTR, dict.fromkeys(models, why))
        if keep == "front":
            drop_models_off_front(self.study, pending)

    def checkpoint_path(self, trial: optuna.Trial, spec: TrialSpec) -> Path:
        """``<out>/checkpoints/<study>-trial<N>-<hash>.safetensors``; N is the original trial.

        A re-queued trial (``failed_trial`` system attribute, set by the heartbeat's retry and
        by Ctrl-C) finds the checkpoint of the trial it repeats; the hash of the trial's
        configuration keeps another study of the same name from resuming a foreign checkpoint.
        """
        attrs = stored_trial(trial).system_attrs
        origin = int(attrs.get("failed_trial", trial.number))
        config = {k: v for k, v in spec.as_dict().items() if k not in ("data_dir", "device")}
        digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", self.study.study_name)
        return self.checkpoints / f"{stem}-trial{origin:05d}-{digest.hexdigest()[:10]}.safetensors"

    def _end(
        self, trial: optuna.Trial, checkpoint: Path, curve: list[dict[str, Any]], key: str, why: str
    ) -> None:
        record_end(trial, key, why, curve)
        _remove_checkpoint(checkpoint)
        if self.progress:
            self.progress.end_trial(None)

    def _requeue(self, trial: optuna.Trial) -> None:
        """Queue an interrupted trial again (same parameters), marked as repeating the original."""
        try:
            requeue(self.study, stored_trial(trial), as_retry=False)
            trial.set_user_attr("interrupted", True)
        except Exception as exc:  # an interrupt must stay an interrupt
            logging.getLogger(__name__).warning(
                "could not re-queue trial %d: %s", trial.number, exc
            )


def _remove_checkpoint(path: Path) -> None:
    path.unlink(missing_ok=True)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)


def _takes(runner: Callable[..., Any], name: str) -> bool:
    """Whether ``runner`` accepts the keyword ``name`` (or any keyword)."""
    try:
        params = inspect.signature(runner).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind == inspect.Parameter.VAR_KEYWORD for p in params)
