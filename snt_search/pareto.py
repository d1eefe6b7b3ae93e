"""The Pareto front of a study: rows for people (tables) and files for tools (JSON, CSV).

The front is Optuna's ``study.best_trials`` (non-dominated COMPLETE trials) with trials whose
objective values are not finite left out: NaN or infinity never enters a front.
"""

from __future__ import annotations

import csv
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import optuna

__all__ = ["front_rows", "objective_names", "write_csv", "write_front"]

# Trial attributes shown beside the objectives when present.
DETAIL_ATTRS = (
    "base_accuracy",
    "compressed_accuracy",
    "accuracy_drop",
    "lambda_max",
    "train_time_s",
)


def objective_names(study: optuna.Study) -> list[str]:
    """The metric names the driver stored with the study (``objective_i`` for foreign studies)."""
    names = study.user_attrs.get("objectives")
    if isinstance(names, list) and len(names) == len(study.directions):
        return [str(n) for n in names]
    return [f"objective_{i}" for i in range(len(study.directions))]


def front_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One dict per Pareto-optimal trial: number, objective values, choices, key metrics."""
    names = objective_names(study)
    rows = []
    for t in sorted(study.best_trials, key=lambda t: t.number):
        if t.values is None or not all(math.isfinite(v) for v in t.values):
            continue
        row: dict[str, Any] = {"trial": t.number}
        row.update(dict(zip(names, t.values, strict=True)))
        for attr in DETAIL_ATTRS:
            if attr in t.user_attrs and attr not in row:
                row[attr] = t.user_attrs[attr]
        row.update({f"param:{k}": v for k, v in sorted(t.params.items())})
        rows.append(row)
    return rows


def write_front(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write ``pareto.json`` and ``pareto.csv`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out_dir / "pareto.json", out_dir / "pareto.csv"
    _atomic_write(json_path, json.dumps(rows, indent=2, default=str) + "\n")
    return [json_path, write_csv(rows, csv_path)]


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write ``rows`` as CSV (columns: the union of the rows' keys, in first-seen order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    tmp = _tmp_path(path)
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def _tmp_path(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process and thread: several commands
    sharing a study write the same files at the end, and must not move each other's."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _atomic_write(path: Path, text: str) -> None:
    tmp = _tmp_path(path)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
