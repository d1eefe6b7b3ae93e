"""What the report says, independent of the format: the correlation, findings and tables.

:func:`summarize` turns a :class:`~snt_search.report.data.StudyData` into a :class:`Summary`
(the lambda_max/accuracy-drop correlation, a few sentences of findings and the tables of
:mod:`.tables`), which :mod:`.html` and :mod:`.markdown` render the same way, so both files
always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .data import StudyData
from .stats import Correlation, spearman
from .tables import Table, build_tables, fmt, levels, median, throughput_ratios

__all__ = ["Summary", "Table", "fmt", "summarize", "verdict"]


@dataclass(frozen=True)
class Summary:
    """The pooled lambda_max/accuracy-drop correlation, findings (sentences) and tables by key."""

    correlation: Correlation
    findings: list[str]
    tables: dict[str, Table] = field(default_factory=dict)


def summarize(data: StudyData, *, ci_method: str = "fisher", confidence: float = 0.95) -> Summary:
    """Findings and tables of ``data``; the correlation uses ``ci_method`` (see :mod:`.stats`)."""
    finished = data.finished
    corr = spearman(
        [_nan(r.metric("lambda_max")) for r in finished],
        [_nan(r.metric("accuracy_drop")) for r in finished],
        method=ci_method,
        confidence=confidence,
    )
    tables = build_tables(data, ci_method, confidence)
    return Summary(corr, _findings(data, corr), tables)


def verdict(corr: Correlation) -> str:
    """What the interval says about the paper's claim (flatter models lose less accuracy)."""
    if not corr.has_ci:
        return "too few finished trials to say whether flatter models lose less accuracy"
    if corr.low > 0:
        return "sharper models lost more accuracy: this supports the paper's claim"
    if corr.high < 0:
        return "sharper models lost less accuracy: this contradicts the paper's claim"
    return "the interval includes 0, so this study cannot tell; more trials would narrow it"


def _findings(data: StudyData, corr: Correlation) -> list[str]:
    n_surplus = len(data.surplus)
    n_other = len(data.trials) - len(data.finished) - len(data.failed) - n_surplus
    out = [
        f"{len(data.trials)} trials: {len(data.finished)} finished, {len(data.failed)} failed"
        + (f", {n_surplus} surplus (ended unrun: the study had its trials)" if n_surplus else "")
        + (f", {n_other} running, waiting or pruned" if n_other else "")
        + f"; {len(data.front)} on the Pareto front."
    ]
    if not data.finished:
        out.append(
            "No trial has finished yet, so there is no front, correlation or comparison: "
            "this report lists the failures and how to re-run the trials."
        )
        return out
    out.append(f"λ_max vs accuracy drop: Spearman {corr.describe()}; {verdict(corr)}.")
    if corr.dropped:
        out.append(
            f"{corr.dropped} finished trial(s) with a missing or non-finite λ_max or accuracy "
            "drop are left out of the correlation and the plots."
        )
    unconverged = [r.number for r in data.finished if r.sharpness.get("converged") is False]
    if unconverged:
        out.append(
            f"The λ_max estimate did not converge for {len(unconverged)} of "
            f"{len(data.finished)} finished trials (hollow markers); raise max_iter under "
            "[sharpness] (or the budget's sharpness_max_iter) in the space file to tighten them."
        )
    found = levels(data)
    if len(found) > 1:
        (axis, _), *_ = found
        shown = ", ".join(fmt(v) for _, v in found)
        out.append(
            f"The trials were compressed to different levels ({axis} {shown}), which moves the "
            "accuracy drop too; the correlation at each single level is in the table under "
            "'Is flatter more compressible?'."
        )
    groups = data.groups()
    if len(groups) > 1:
        for metric, what in (("lambda_max", "λ_max"), ("accuracy_drop", "accuracy drop")):
            medians = {g: median(rows, metric) for g, rows in groups.items()}
            known = {g: v for g, v in medians.items() if v is not None}
            if known:
                best = min(known, key=lambda g: known[g])
                out.append(f"Lowest median {what}: {best}: {fmt(known[best])}.")
    for line in _cost_lines(data):
        out.append(line)
    return out


def _cost_lines(data: StudyData) -> list[str]:
    ratios = throughput_ratios(data)
    if not ratios:
        return []
    base, rel = ratios
    parts = [f"{g} {r:.2f}x" for g, r in rel.items() if g != base]
    if not parts:
        return []
    return [
        f"Training throughput relative to {base} (median images/s; below 1 is slower): "
        + ", ".join(parts)
        + "."
    ]


def _nan(value: float | None) -> float:
    return math.nan if value is None else value
