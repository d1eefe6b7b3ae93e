"""The Pareto front as a table that reads at 80 columns (``snt-search pareto`` and ``study``).

Columns, most important first: the trial, the metrics in the row's order (the objectives come
first, then base and compressed accuracy), the plugins chosen per trial, the numeric
parameters, and the training time. Headers are short (``λ_max``, ``drop``, ``base %``,
``lr``); a plugin
or parameter that is the same in every row is shown once in the caption; whatever does not
fit the width is named in the caption and is in ``--json``/``--csv`` (see :mod:`._tables`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, RenderableType

from ._tables import Column, fit_table

__all__ = ["HEADERS", "front_columns", "front_table"]

PARAM = "param:"
HEADERS = {  # metric -> short header; anything else keeps its name
    "trial": "trial",
    "lambda_max": "λ_max",
    "accuracy_drop": "drop",
    "base_accuracy": "base %",  # test accuracy before compression
    "compressed_accuracy": "compr %",  # ... and after
    "train_time_s": "time s",
    "sweep_auc": "sweep auc",
    "sweep_mean_accuracy": "sweep acc",
    "sweep_accuracy_drop": "sweep drop",
}
LAST = ("train_time_s",)  # metrics shown only after the plugins and parameters


def front_columns(rows: Sequence[dict[str, Any]]) -> list[Column]:
    """The columns of ``rows`` (``front_rows`` dicts), most important first."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    metrics = [k for k in keys if not k.startswith(PARAM) and k != "trial" and k not in LAST]
    params = [k for k in keys if k.startswith(PARAM)]
    choices = [k for k in params if "." not in k]  # param:transform, param:optimizer, ...
    numeric = [k for k in params if "." in k]
    last = [k for k in keys if k in LAST]
    columns = [Column("trial", "trial", "right", required=True, constant_to_caption=False)]
    columns += [Column(k, HEADERS.get(k, k), "right", constant_to_caption=False) for k in metrics]
    columns += [Column(k, k.removeprefix(PARAM)) for k in choices]
    columns += [
        Column(k, h, "right") for k, h in zip(numeric, _param_headers(numeric), strict=True)
    ]
    columns += [Column(k, HEADERS.get(k, k), "right", constant_to_caption=False) for k in last]
    return columns


def front_table(rows: Sequence[dict[str, Any]], *, title: str, console: Console) -> RenderableType:
    """``rows`` as a table no wider than ``console.width``, no cell cut (see the module)."""
    return fit_table(
        front_columns(rows), rows, console=console, title=title, fmt=fmt, more="--json or --csv"
    )


def fmt(value: Any) -> str:
    """A cell: floats to 4 significant digits, everything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _param_headers(keys: Sequence[str]) -> list[str]:
    """``param:train.lr`` -> ``lr``; ``param:optimizer.sam.rho`` -> ``rho``, or ``sam.rho``
    when another parameter is also called ``rho``."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    out = []
    for key, name in zip(keys, last, strict=True):
        if last.count(name) > 1:
            name = ".".join(key.removeprefix(PARAM).split(".")[1:]) or name
        out.append(name)
    return out
