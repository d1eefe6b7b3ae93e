"""The command line that re-trains a trial: ``snt-search train`` built from its ``config``.

``config`` is the trial's :class:`~snt_search.trial_spec.TrialSpec` as stored by the driver.
``snt-search train`` takes the dataset, backbone, transform and optimizer with their
parameters, the training settings, the data subsets and the seed, so the command reproduces
the trained model of the trial exactly. It has no compressor and does not estimate lambda_max:
:func:`untrained_settings` lists what of the config the command leaves out (the compressor
and its parameters, the sharpness estimator), so the report can show them beside it.

Values go through ``--set`` as TOML (``0.001``, ``true``, ``"cosine"``), the syntax
``snt-search train --set`` parses, and every word is shell-quoted: ``shlex.split`` of the
command and the CLI's parser give back the same plugins, parameters and settings.
"""

from __future__ import annotations

import json
import math
import shlex
from typing import Any

__all__ = ["TRAIN_KINDS", "rerun_command", "toml_value", "untrained_settings"]

TRAIN_KINDS = ("dataset", "backbone", "transform", "optimizer")
# TrainConfig fields with their own `snt-search train` flag; every other field goes via --set.
_TRAIN_FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr"}
_BUDGET_FLAGS = {"train_subset": "--train-subset", "test_subset": "--test-subset"}


def rerun_command(config: dict[str, Any], *, program: str = "snt-search") -> str:
    """The ``snt-search train ...`` line that re-trains the model ``config`` describes.

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
    for kind in TRAIN_KINDS:
        for key, value in sorted((params.get(kind) or {}).items()):
            words += ["--set", f"{kind}.{plugins[kind]}.{key}={toml_value(value)}"]
    return shlex.join(words)


def untrained_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What the trial ran that ``snt-search train`` does not: compressor and sharpness settings."""
    plugins = config.get("plugins") or {}
    params = config.get("params") or {}
    out: dict[str, Any] = {}
    if plugins.get("compressor"):
        out["compressor"] = plugins["compressor"]
        out["compressor_params"] = dict(params.get("compressor") or {})
    if config.get("sharpness"):
        out["sharpness"] = dict(config["sharpness"])
    return out


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
