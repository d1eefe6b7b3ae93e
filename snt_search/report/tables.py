"""The report's tables as formatted strings, shared by the HTML and Markdown renderers.

Each builder reads a :class:`~snt_search.report.data.StudyData` and returns a :class:`Table`
whose cells are already formatted by :func:`fmt`; :func:`build_tables` makes all of them.
Statistics helpers (:func:`median`, :func:`levels`, :func:`throughput_ratios`) are shared with
the findings in :mod:`.summary`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .data import StudyData, TrialRow, finite
from .rerun import rerun_command
from .stats import spearman

__all__ = ["Table", "build_tables", "fmt", "levels", "median", "throughput_ratios"]


@dataclass(frozen=True)
class Table:
    """A titled table of already formatted cells; ``rows[i][j]`` belongs to ``columns[j]``."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    code_columns: frozenset[str] = frozenset()


def fmt(value: Any) -> str:
    """A cell: ``–`` for missing, 4 significant digits for floats, ``nan``/``inf`` kept visible."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def build_tables(data: StudyData, ci_method: str, confidence: float) -> dict[str, Table]:
    """Every table of the report by key: front, groups, levels, cost, failures, rerun, trials."""
    tables = (
        _front_table(data),
        _group_table(data, ci_method, confidence),
        _level_table(data, ci_method, confidence),
        _cost_table(data),
        _failure_table(data),
        _rerun_table(data),
        _trials_table(data),
    )
    return {t.key: t for t in tables}


def throughput_ratios(data: StudyData) -> tuple[str, dict[str, float]] | None:
    medians = {g: median(rows, "images_per_s") for g, rows in data.groups().items()}
    known = {g: v for g, v in medians.items() if v}
    if not known:
        return None
    base = next((g for g in known if "none + adam" in g), next(iter(known)))
    return base, {g: v / known[base] for g, v in known.items()}


def _front_table(data: StudyData) -> Table:
    extra = [m for m in ("base_accuracy", "compressed_accuracy", "accuracy_drop", "lambda_max")]
    extra = [m for m in extra if m not in data.objectives] + ["n_params"]
    columns = ["trial", "group", *data.objectives, *extra, "compressed to"]
    rows = []
    for r in sorted(data.front, key=lambda r: r.values or ()):
        point = r.compression_point()
        rows.append(
            [
                str(r.number),
                r.group,
                *(fmt(v) for v in (r.values or ())),
                *(fmt(r.metric(m)) for m in extra),
                f"{point[0]} {fmt(point[1])}" if point else "–",
            ]
        )
    arrows = ", ".join(f"{o} ({d})" for o, d in zip(data.objectives, data.directions, strict=False))
    note = (
        "Non-dominated finished trials that meet the study's constraints and have finite "
        f"objectives (as `snt-search pareto`); objectives: {arrows}."
    )
    return Table("front", "Pareto front", columns, rows, note)


def _group_table(data: StudyData, ci_method: str, confidence: float) -> Table:
    columns = [
        "group", "trials", "median λ_max", "median accuracy drop", "mean accuracy before",
        "mean accuracy after", "rho within group",
    ]  # fmt: skip
    rows = []
    for group, members in data.groups().items():
        corr = spearman(
            [_m(r, "lambda_max") for r in members],
            [_m(r, "accuracy_drop") for r in members],
            method=ci_method,
            confidence=confidence,
        )
        rows.append(
            [
                group,
                str(len(members)),
                fmt(median(members, "lambda_max")),
                fmt(median(members, "accuracy_drop")),
                fmt(mean(members, "base_accuracy")),
                fmt(mean(members, "compressed_accuracy")),
                fmt(corr.rho) if math.isfinite(corr.rho) else "–",
            ]
        )
    return Table("groups", "Per group (transform + optimizer)", columns, rows)


def levels(data: StudyData) -> list[tuple[str, float]]:
    """The distinct compression levels (axis, value rounded to 2 decimals) of finished trials."""
    points = {p for r in data.finished if (p := r.compression_point())}
    return sorted({(axis, round(v, 2)) for axis, v in points})


def _level_table(data: StudyData, ci_method: str, confidence: float) -> Table:
    columns = ["compression level", "trials", "rho", "CI low", "CI high", "p"]
    rows = []
    found = levels(data)
    for axis, value in found if len(found) > 1 else []:
        members = [
            r
            for r in data.finished
            if (p := r.compression_point()) and p[0] == axis and round(p[1], 2) == value
        ]
        c = spearman(
            [_m(r, "lambda_max") for r in members],
            [_m(r, "accuracy_drop") for r in members],
            method=ci_method,
            confidence=confidence,
        )
        rows.append(
            [f"{axis} {fmt(value)}", str(c.n), fmt(c.rho), fmt(c.low), fmt(c.high), fmt(c.p_value)]
        )
    note = (
        "Spearman's rho of λ_max vs accuracy drop among trials compressed to the same level "
        "(n = finite pairs; nan: too few trials for that statistic)."
    )
    return Table("levels", "Correlation at each compression level", columns, rows, note)


def _cost_table(data: StudyData) -> Table:
    ratios = throughput_ratios(data)
    columns = [
        "group", "trials", "median images/s", "throughput vs baseline", "median train time (s)",
        "median λ_max time (s)",
    ]  # fmt: skip
    rows = []
    for group, members in data.groups().items():
        ratio = ratios[1].get(group) if ratios else None
        rows.append(
            [
                group,
                str(len(members)),
                fmt(median(members, "images_per_s")),
                f"{ratio:.2f}x" if ratio is not None else "–",
                fmt(median(members, "train_time_s")),
                fmt(median(members, "sharpness_time_s")),
            ]
        )
    note = (
        f"Baseline: {ratios[0]}. Throughput compares fairly only between trials of the same "
        "backbone, batch size and device."
        if ratios
        else ""
    )
    return Table("cost", "Training cost", columns, rows, note)


def _failure_table(data: StudyData) -> Table:
    rows = [
        [str(r.number), r.group, r.fail_reason or "no reason stored (killed worker or old run)"]
        for r in data.failed
    ]
    surplus = [str(r.number) for r in data.surplus]
    note = (
        f"Not listed: {len(surplus)} surplus trial(s) ({', '.join(surplus)}), failed unrun "
        "because the study already had the trials asked for (not failures)."
        if surplus
        else ""
    )
    return Table("failures", "Failed trials", ["trial", "group", "reason"], rows, note)


def _rerun_table(data: StudyData) -> Table:
    rows = []
    for r in data.trials:
        if r.config is None:
            rows.append([str(r.number), r.status, "no config stored with this trial"])
            continue
        rows.append([str(r.number), r.status, rerun_command(data.name, r.number, data.storage)])
    note = (
        "snt-search rerun runs the trial's whole pipeline again from its stored configuration "
        "(training, λ_max, compression, evaluation) and prints the stored and the new metrics "
        "side by side; on the CPU the same seed gives the same numbers."
    )
    return Table(
        "rerun",
        "Re-running a trial",
        ["trial", "state", "command"],
        rows,
        note,
        code_columns=frozenset({"command"}),
    )


def _trials_table(data: StudyData) -> Table:
    metrics = (
        "lambda_max",
        "accuracy_drop",
        "base_accuracy",
        "compressed_accuracy",
        "train_time_s",
    )
    columns = ["trial", "state", "group", *metrics, "on front"]
    rows = [
        [
            str(r.number),
            r.status,
            r.group,
            *(fmt(r.metric(m)) for m in metrics),
            fmt(r.on_front),
        ]
        for r in data.trials
    ]
    return Table("trials", "All trials", columns, rows)


def _m(r: TrialRow, name: str) -> float:
    v = r.metric(name)
    return math.nan if v is None else v


def _values(rows: Sequence[TrialRow], metric: str) -> list[float]:
    return [v for r in rows if finite(v := r.metric(metric)) and v is not None]


def median(rows: Sequence[TrialRow], metric: str) -> float | None:
    vals = _values(rows, metric)
    return statistics.median(vals) if vals else None


def mean(rows: Sequence[TrialRow], metric: str) -> float | None:
    vals = _values(rows, metric)
    return statistics.fmean(vals) if vals else None
