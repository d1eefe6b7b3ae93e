"""Optuna callbacks named on the command line: ``snt-search study --callback module:object``.

An Optuna callback is a callable ``(study, frozen_trial) -> None`` called after each trial
finishes (``Study.optimize(callbacks=...)``). ``--callback pkg.mod:obj`` imports ``pkg.mod``
and takes its attribute ``obj`` (dots reach further: ``mod:holder.cb``); a class is
instantiated with no arguments. Modules are found on ``sys.path`` and in the working folder. So an integration snt-search does not depend on plugs in
with a two-line module of the user's, e.g. Weights & Biases through ``optuna-integration``::

    # wandb_cb.py, on PYTHONPATH
    from optuna_integration.wandb import WeightsAndBiasesCallback
    callback = WeightsAndBiasesCallback(metric_name=["lambda_max", "accuracy_drop"])

    snt-search study --space mixer_prune --callback wandb_cb:callback

Callbacks are loaded before the first trial (a typo fails at once, naming the option) and in
every worker process; the local driver passes them to ``Study.optimize``, the Ray driver calls
them after it tells the study a trial's result. An exception in a callback is the user's code
failing: it stops the study with the callback's name, after the trial has been stored.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

__all__ = ["Callback", "CallbackError", "load_callback", "load_callbacks"]

Callback = Callable[[optuna.Study, FrozenTrial], None]


class CallbackError(ValueError):
    """A ``--callback`` could not be loaded; the message names it and the fix."""


def load_callback(spec: str) -> Callback:
    """The callback ``spec`` (``module:object``) names; :class:`CallbackError` if it cannot."""
    where = f"--callback {spec}"
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CallbackError(
            f"{where}: write MODULE:OBJECT, e.g. --callback my_callbacks:log_trial "
            f"(an importable module and the callable in it)"
        )
    if os.getcwd() not in sys.path:  # a module in the working folder, as `uvicorn app:app`
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise CallbackError(
            f"{where}: cannot import module {module_name!r} ({type(exc).__name__}: {exc}); "
            f"install it or put its folder on PYTHONPATH"
        ) from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise CallbackError(
                f"{where}: {module_name!r} has no attribute {attr!r}; it defines: "
                f"{', '.join(names[:12]) or '(nothing public)'}"
            )
        obj = getattr(obj, part)
    if inspect.isclass(obj):
        try:
            obj = obj()
        except TypeError as exc:
            raise CallbackError(
                f"{where}: {attr} is a class that needs arguments ({exc}); create the "
                f"instance in your module and name it instead"
            ) from exc
    if not callable(obj):
        raise CallbackError(
            f"{where}: {attr} is a {type(obj).__name__}, not callable; an Optuna callback is "
            f"called as callback(study, trial)"
        )
    return named(obj, spec)


def load_callbacks(
    specs: Sequence[str], track: Sequence[str] = (), track_dir: Path | None = None
) -> list[Callback]:
    """The trackers ``track`` names (writing under ``track_dir``), then the ``--callback``s."""
    from .trackers import make_tracker

    trackers: list[Callback] = [make_tracker(name, track_dir or Path(".")) for name in track]
    return trackers + [load_callback(s) for s in specs]


def named(callback: Callback, spec: str) -> Callback:
    """``callback`` with its exceptions re-raised naming ``--callback spec``."""

    def call(study: optuna.Study, trial: FrozenTrial) -> None:
        try:
            callback(study, trial)
        except Exception as exc:
            raise CallbackError(
                f"--callback {spec} raised {type(exc).__name__}: {exc} (after trial "
                f"{trial.number}, which is stored); fix the callback, then run the same command "
                f"again to resume"
            ) from exc

    return call
