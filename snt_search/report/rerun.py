"""The command lines that re-run a trial, built from what the study stored.

:func:`rerun_command` is the one the report shows: ``snt-search rerun --study-name S --trial
N`` runs the trial's whole pipeline again from its stored ``config`` (train, lambda_max,
compress, evaluate) and prints the stored and the new metrics side by side.

:func:`train_command` is the ``snt-search train`` line that re-trains only the model of a
``config`` (a trial's :class:`~snt_search.trial_spec.TrialSpec` as stored by the driver) and
compresses a copy with the trial's compressor: dataset, backbone, transform, optimizer and
compressor with their parameters, the training settings, the data subsets and the seed. It
does not estimate lambda_max. Values go through ``--set`` as TOML (``0.001``, ``true``,
``"cosine"``), the syntax ``snt-search train --set`` parses, and every word is
shell-quoted: ``shlex.split`` of the command and the CLI's parser give back the same plugins,
parameters and settings.
"""

from __future__ import annotations

import json
import math
import shlex
from typing import Any

__all__ = ["TRAIN_KINDS", "rerun_command", "toml_value", "train_command"]

TRAIN_KINDS = ("dataset", "backbone", "transform", "optimizer")
# TrainConfig fields with their own `snt-search train` flag; every other field goes via --set.
_TRAIN_FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr"}
_BUDGET_FLAGS = {"train_subset": "--train-subset", "test_subset": "--test-subset"}


def rerun_command(
    study_name: str, number: int, storage: str = "", *, program: str = "snt-search"
) -> str:
    """``snt-search rerun --study-name S --trial N [--storage URL]`` (the storage is left out
    when empty or the default one)."""
    from ..storage import DEFAULT_STORAGE

    words = [program, "rerun", "--study-name", study_name, "--trial", str(number)]
    if storage and storage != DEFAULT_STORAGE:
        words += ["--storage", storage]
    return shlex.join(words)


def train_command(config: dict[str, Any], *, program: str = "snt-search") -> str:
    """The ``snt-search train ...`` line that re-trains the model ``config`` describes and,
    when it names a compressor, compresses a copy with it.

    Raises ValueError when ``config`` lacks a plugin of a kind ``train`` needs.
    """
    plugins = config.get("plugins") or {}
    missing = [k for k in TRAIN_KINDS if not plugins.get(k)]
    if missing:
        raise ValueError(
            f"trial config has no {', '.join(missing)} plugin (plugins: {plugins}); a re-run "
            f"command needs all of {', '.join(TRAIN_KINDS)}"
        )
    words = [program, "train"]
    for kind in TRAIN_KINDS:
        words += [f"--{kind}", str(plugins[kind])]
    if plugins.get("compressor"):
        words += ["--compressor", str(plugins["compressor"])]
    train = dict(config.get("train") or {})
    for key, flag in _TRAIN_FLAGS.items():
        if key in train:
            words += [flag, _flag_value(train.pop(key))]
    budget = config.get("budget") or {}
    for key, flag in _BUDGET_FLAGS.items():
        if budget.get(key) is not None:
            words += [flag, str(budget[key])]
    if config.get("data_dir"):
        words += ["--data-dir", str(config["data_dir"])]
    if config.get("device") and config["device"] != "cpu":
        words += ["--device", str(config["device"])]
    words += ["--seed", str(int(config.get("seed", 0)))]
    for key, value in train.items():
        words += ["--set", f"train.{key}={toml_value(value)}"]
    params = config.get("params") or {}
    kinds = (*TRAIN_KINDS, "compressor") if plugins.get("compressor") else TRAIN_KINDS
    for kind in kinds:
        for key, value in sorted((params.get(kind) or {}).items()):
            words += ["--set", f"{kind}.{plugins[kind]}.{key}={toml_value(value)}"]
    return shlex.join(words)


def toml_value(value: Any) -> str:
    """``value`` as a TOML literal: ``true``, ``3``, ``0.001``, ``inf``, ``"text"``, ``[1, 2]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for any printable text
    raise ValueError(
        f"cannot write {value!r} ({type(value).__name__}) as a --set value; "
        f"expected a bool, number, string or list"
    )


def _flag_value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
