"""A Ray Tune search algorithm that asks and tells the study's own Optuna study.

Ray's ``OptunaSearch`` keeps a study of its own; this searcher instead opens the snt-search
study with :func:`snt_search.driver.open_study` (same storage, same identity check against
the space and budget, the space's sampler) and samples each trial with
:func:`snt_search.trial_spec.sample`, so conditional parameters, re-queued trials and the
stored attributes are exactly those of the local driver. The searcher runs in the driver
process and is the only writer of the study: workers never need to reach the storage.

Contract (Ray's ``Searcher``): ``suggest`` returns the config of a new trial (see
:mod:`snt_search.ray.trainable`), ``None`` to wait, or ``FINISHED`` once the study has
``target`` finished trials (or after ``MAX_UNEXPECTED_IN_A_ROW`` unexpected errors in a row,
which it records in the study attribute ``ray_experiment_state`` as ``aborted``);
``on_trial_result``/``on_trial_complete`` record and tell; ``save``/``restore`` carry the map
of live Ray trials to Optuna trials and what rebuilds the sampler, so a restored experiment
neither loses nor repeats trials.

The saved state (:meth:`StudySearcher.get_state`) is plain data, never a live object (Optuna's
samplers hold locks): the live map, the count of unexpected errors in a row, and the sampler's
name, seed, stream and study. A searcher brought back (``set_state``/``restore``, or unpickled
from Ray's ``tuner.pkl``) reopens the study and rebuilds the sampler from
:data:`snt_search.samplers.FACTORIES` on a new stream derived from the saved one and the number
of trials the study holds then (:func:`snt_search.samplers.make_sampler` ``restart``): every
sampler reads its history (NSGA-II's generations, TPE's and GP's past trials) from the study,
and the new stream keeps the restored experiment from drawing again what the first run drew
after its last save (those trials are queued again with their own parameters).
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from ray.tune.search import Searcher

from ..callbacks import Callback, CallbackError
from ..driver import (
    MAX_UNEXPECTED_IN_A_ROW,
    StudyOptions,
    finished_counts,
    open_study,
    record_study,
)
from ..early_stop import front_floor
from ..export.store import store_url
from ..optuna_compat import study_storage
from ..optuna_compat import trial_id as storage_id
from ..pareto import front_trials
from ..samplers import make_sampler
from ..space import Space
from ..trial_spec import sample
from .record import ATTR_EXPERIMENT, STATE_ATTR, fail_and_requeue, record_outcome
from .trainable import RESULT_KEY

__all__ = ["StudySearcher"]

RUNNING = TrialState.RUNNING


@dataclass
class _Live:
    """One Ray trial in flight and the Optuna trial it runs."""

    trial_id: int  # Optuna storage id
    number: int
    attempt: str = ""  # token of the attempt that reported last
    handle: optuna.Trial | None = None  # not saved: rebuilt from trial_id after a restore


class StudySearcher(Searcher):
    """Ask the study for trials, tell it their outcomes; see the module docstring.

    ``experiment`` names the Ray experiment (stored on each trial as ``ray_experiment``);
    ``target`` is the number of finished trials the study should reach; ``threads`` is the
    torch thread count of each trial (the CPUs it reserved); ``stream`` seeds the sampler
    (:func:`snt_search.driver.make_sampler`), distinct per experiment.
    """

    def __init__(
        self,
        space: Space,
        options: StudyOptions,
        *,
        experiment: str,
        target: int,
        threads: int = 1,
        max_failures: int = 0,
        stream: int = 0,
    ) -> None:
        super().__init__()
        self._space = space
        self._options = options
        self._experiment = experiment
        self._target = target
        self._threads = threads
        self._max_failures = max_failures
        self._stream = stream
        self._live: dict[str, _Live] = {}
        self._unexpected = 0
        self._aborted: str | None = None
        self._callbacks: list[Callback] | None = None  # loaded on first use (not pickled)
        self._restored = False  # brought back from a save: rebuild the sampler on a new stream
        self._study: optuna.Study | None = None

    @property
    def study(self) -> optuna.Study:
        """The study, opened on first use; after a restore, with the sampler rebuilt."""
        if self._study is None:
            study = open_study(self._space, self._options, stream=self._stream)
            if self._restored:
                asked = len(study.get_trials(deepcopy=False))
                study.sampler = make_sampler(self._space, self._stream, restart=asked)
            # After a restore, Ray may run again a trial the study already has: its state was
            # saved before the trial ended. Forget it; its repeated result is ignored.
            running = {storage_id(t) for t in study.get_trials(deepcopy=False, states=(RUNNING,))}
            self._live = {k: v for k, v in self._live.items() if v.trial_id in running}
            self._study = study
        return self._study

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        return True  # the space is the study's; Ray's metric/mode do not apply (multi-objective)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        study = self.study
        finished = finished_counts(study)["total"]
        if finished >= self._target or self._aborted:
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray documents this str sentinel
        if finished + len(self._live) >= self._target:
            return None  # enough in flight; asked again when one ends
        with warnings.catch_warnings():  # ask/tell trials do not beat: the driver sweeps them
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
        options = self._options
        spec = sample(
            self._space,
            trial,
            self._space.budget(options.budget),
            data_dir=options.data_dir,
            download=options.download,
            device=options.device,
        )
        trial.set_user_attr("config", spec.as_dict())
        trial.set_user_attr(ATTR_EXPERIMENT, self._experiment)
        trial.set_user_attr("ray_trial_id", trial_id)
        self._live[trial_id] = _Live(storage_id(trial), trial.number, handle=trial)
        rule = self._space.early_stop
        front_accuracy = None
        if rule is not None and rule.front_fraction is not None:
            curves = [t.user_attrs.get("curve", []) for t in front_trials(study)]
            front_accuracy = front_floor(curves, rule.at_epoch)
        searched = [k for k, names in self._space.plugins.items() if len(names) > 1]
        return {
            "trial": trial.number,
            "label": " ".join(f"{k}={spec.plugins[k]}" for k in searched),
            "spec": spec,
            "threads": self._threads,
            "objectives": list(self._space.objectives),
            "early_stop": rule,
            "front_accuracy": front_accuracy,
            "models": self._models_config(study),
        }

    def _models_config(self, study: optuna.Study) -> dict[str, str] | None:
        """Where the trainable stores the trial's models (an absolute folder every worker
        sees, or S3); None with ``--keep-models none``."""
        keep = self._options.keep_models
        if keep == "none":
            return None
        store = store_url(self._options.artifact_store(study.study_name))
        return {"store": store, "study": study.study_name, "keep": keep}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        live = self._live.get(trial_id)
        token = result.get("attempt")
        if live is None or not token or token == live.attempt:
            return
        live.attempt = str(token)
        where = {"node_id": result.get("ray_node_id"), "node_ip": result.get("ray_node_ip")}
        from_epoch = int(result.get("from_epoch", 0))
        trial = self._handle(live)
        try:
            attempts = [
                *trial.user_attrs.get("ray_attempts", []),
                {**where, "from_epoch": from_epoch},
            ]
            attrs = {
                "worker": f"{result.get('hostname')}:{result.get('pid')}",
                "ray_node_id": where["node_id"],
                "ray_node_ip": where["node_ip"],
                "ray_attempts": attempts,
            }
            if from_epoch:
                attrs["resumed_from_epoch"] = from_epoch
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
        except UpdateFinishedTrialError:  # finished meanwhile (the driver swept it): forget it
            self._live.pop(trial_id, None)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if result:
            self.on_trial_result(trial_id, result)
        live = self._live.pop(trial_id, None)
        if live is None:
            return
        study = self.study
        if error or not result or RESULT_KEY not in result:
            fail_and_requeue(
                study,
                live.trial_id,
                f"Ray trial {trial_id} errored after {self._max_failures} retries (see its "
                f"error.txt in the Ray experiment folder); its parameters are queued again",
            )
            return
        outcome = json.loads(result[RESULT_KEY])
        space = self._space
        state = record_outcome(
            study,
            self._handle(live),
            outcome,
            list(space.objectives),
            space.constraints,
            keep_models=self._options.keep_models,
        )
        self._unexpected = self._unexpected + 1 if outcome.get("unexpected") else 0
        if self._unexpected >= MAX_UNEXPECTED_IN_A_ROW and not self._aborted:
            self._aborted = (
                f"{self._unexpected} trials in a row failed with unexpected errors (last: "
                f"{outcome['fail_reason']}); that looks like a bug or a broken environment "
                f"rather than a bad configuration"
            )
            state_attr = dict(study.user_attrs.get(STATE_ATTR, {}), aborted=self._aborted)
            study.set_user_attr(STATE_ATTR, state_attr)
        if state == TrialState.COMPLETE:
            record_study(study)
        self._call_back(study, live.trial_id)

    def _call_back(self, study: optuna.Study, trial_id: int) -> None:
        """Run the ``--callback`` callbacks on the finished trial, as ``Study.optimize`` does;
        one that raises stops the study with its message (the trial is already stored)."""
        if not (self._options.callbacks or self._options.track):
            return
        if self._callbacks is None:
            self._callbacks = self._options.study_callbacks(study.study_name)
        frozen = study_storage(study).get_trial(trial_id)
        try:
            for callback in self._callbacks:
                callback(study, frozen)
        except CallbackError as exc:
            if not self._aborted:
                self._aborted = str(exc)
                state_attr = dict(study.user_attrs.get(STATE_ATTR, {}), aborted=self._aborted)
                study.set_user_attr(STATE_ATTR, state_attr)

    def _handle(self, live: _Live) -> optuna.Trial:
        if live.handle is None:
            live.handle = optuna.trial.Trial(self.study, live.trial_id)
        return live.handle

    def get_state(self) -> dict[str, Any]:
        """Plain data (dicts, ints, strs) that :meth:`set_state` restores; see the module."""
        live = {
            rid: {"trial_id": v.trial_id, "number": v.number, "attempt": v.attempt}
            for rid, v in self._live.items()
        }
        sampler = {
            "name": self._space.sampler,
            "seed": self._space.seed,
            "stream": self._stream,
            "study": self._options.name(self._space),
        }
        return {"live": live, "sampler": sampler, "unexpected": self._unexpected}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output; the sampler is rebuilt when the study reopens.

        Raises ``ValueError`` if the state was saved for another study, sampler or seed."""
        sampler = state["sampler"]
        if isinstance(sampler, dict):  # (older versions saved a pickled sampler: ignored)
            ours = self.get_state()["sampler"]
            for key, label in (("study", "study"), ("name", "sampler"), ("seed", "seed")):
                if sampler.get(key) != ours[key]:
                    raise ValueError(
                        f"the searcher state was saved for {label} {sampler.get(key)!r}, but "
                        f"this searcher runs {label} {ours[key]!r}; restore the Ray experiment "
                        f"with the space and study it was started with, or start a new one"
                    )
            self._stream = int(sampler["stream"])
        self._live = {
            rid: _Live(**v) if isinstance(v, dict) else replace(v, handle=None)
            for rid, v in state["live"].items()
        }
        self._unexpected = int(state.get("unexpected", 0))
        self._restored = True
        self._study = None  # reopened, with the sampler rebuilt, on first use

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.get_state(), fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.set_state(pickle.load(fh))

    def __getstate__(self) -> dict[str, Any]:
        """The searcher for Ray's ``tuner.pkl``: no study (storages hold connections and
        locks) and no trial handles; the copy reopens the study and rebuilds its sampler."""
        state = self.__dict__.copy()
        state["_live"] = {rid: replace(v, handle=None) for rid, v in self._live.items()}
        state["_study"], state["_restored"] = None, True
        state["_callbacks"] = None  # user callables: loaded again from their names
        return state
