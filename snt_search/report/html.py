"""The report as one self-contained HTML file (plotly.js inlined; no network needed).

Every number is in a plain HTML table, so the page reads without JavaScript; the plots are
plotly ``<div>``\\s drawn by the inlined plotly.js when JavaScript runs. All text from the
study (names, reasons, commands) is HTML-escaped.
"""

from __future__ import annotations

import html
import shlex
from typing import Any

from .data import StudyData
from .figures import (
    compression_figure,
    cost_figure,
    front_figure,
    require_plotly,
    sharpness_figure,
    training_figure,
)
from .summary import Summary, Table

__all__ = ["render_html"]

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1240px; margin: 0 auto; padding: 1.5em 2em 4em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em;
     margin-top: 2.2em; }
.meta { color: #555; margin-top: 0; }
nav a { margin-right: 1.2em; }
ul.findings li { margin: 0.3em 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 9px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
code, td.code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
td.code { text-align: left; min-width: 420px; } span.arg { white-space: nowrap; }
th.code { text-align: left; }
.note { color: #555; font-size: 14px; } .empty { color: #777; font-style: italic; }
.explain { background: #f6f8fa; border-left: 4px solid #1f77b4; padding: 0.6em 1em; }
.plot { min-height: 200px; }
"""


def render_html(data: StudyData, summary: Summary) -> str:
    """The whole document for ``data`` as a string (``<!doctype html>`` ... ``</html>``)."""
    from plotly.offline import get_plotlyjs

    require_plotly()
    title = f"snt-search report: {data.name}"
    sections = [
        _section("summary", "Summary", _findings(summary)),
        _section("front", "Pareto front", _figure(front_figure(data), "front") + _table(summary.tables["front"])),
        _section("sharpness", "Is flatter more compressible?", _sharpness(data, summary)),
        _section("compression", "Accuracy under compression", _figure(compression_figure(data), "compression") + _table(summary.tables["groups"])),
        _section("cost", "Training cost: SAM's overhead vs SNT's", _figure(cost_figure(data), "cost") + _table(summary.tables["cost"])),
    ]  # fmt: skip
    curves = training_figure(data)
    if curves is not None:
        sections.append(_section("training", "Training curves", _figure(curves, "training")))
    sections += [
        _section("failures", "Failed trials", _table(summary.tables["failures"])),
        _section("rerun", "Re-running a trial", _table(summary.tables["rerun"])),
        _section("trials", "All trials", _details(_table(summary.tables["trials"]))),
    ]
    nav = " ".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name, _ in sections)
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{CSS}</style>",
            f'<script type="text/javascript">{get_plotlyjs()}</script>',
            "</head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">{_meta(data)}</p>',
            "<noscript><p class='note'>The plots need JavaScript; every number they show is "
            "also in the tables.</p></noscript>",
            f"<nav>{nav}</nav>",
            *(body for _, _, body in sections),
            "</body></html>",
        ]
    )


def _section(key: str, name: str, inner: str) -> tuple[str, str, str]:
    return key, name, f'<section id="{key}"><h2>{html.escape(name)}</h2>\n{inner}\n</section>'


def _meta(data: StudyData) -> str:
    attrs = data.attrs
    parts = [f"storage <code>{html.escape(data.storage or '?')}</code>"]
    for key in ("space", "budget"):
        if attrs.get(key) is not None:
            parts.append(f"{key} <b>{html.escape(str(attrs[key]))}</b>")
    objectives = ", ".join(
        f"{o} ({d})" for o, d in zip(data.objectives, data.directions, strict=False)
    )
    parts.append(f"objectives: {html.escape(objectives)}")
    return " · ".join(parts)


def _findings(summary: Summary) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary.findings)
    return f'<ul class="findings">{items}</ul>'


def _sharpness(data: StudyData, summary: Summary) -> str:
    corr = summary.correlation
    how = (
        "Fisher's z transform with the Bonett–Wright variance for Spearman's rho"
        if corr.method == "fisher"
        else "the percentile bootstrap (2000 resamples of the trials, seed 0)"
    )
    explain = (
        "<p class='explain'>Spearman's rho ranks the finished trials by λ_max and by accuracy "
        "drop and correlates the ranks: +1 means the flatter a model, the less it lost "
        "(the paper's claim), 0 means no monotone relation, −1 the opposite. The "
        f"{corr.confidence:.0%} confidence interval comes from {html.escape(how)}; if it "
        "excludes 0 the sign is trustworthy at that level. The pooled rho mixes groups: a "
        "group that is both flatter and more robust (e.g. SAM or ARCH against ADAM) pushes it "
        "up; the per-group rho in the table under <a href='#compression'>Accuracy under "
        "compression</a> checks the relation within one configuration. Hollow markers: the "
        "λ_max estimate did not converge.</p>"
    )
    headline = f"<p><b>{html.escape('Spearman ' + corr.describe())}</b></p>"
    levels = summary.tables["levels"]
    return (
        headline
        + explain
        + _figure(sharpness_figure(data, corr), "sharpness")
        + (_table(levels) if levels.rows else "")
    )


def _figure(fig: Any, key: str) -> str:
    if fig is None:
        return "<p class='empty'>Nothing to plot: no finished trial carries these values.</p>"
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"plot-{key}",
        config={"displaylogo": False, "responsive": True},
    )
    return f'<div class="plot">{div}</div>'


def _table(table: Table) -> str:
    note = f"<p class='note'>{html.escape(table.note)}</p>" if table.note else ""
    if not table.rows:
        return f"<p class='empty'>{html.escape(table.title)}: none.</p>" + note
    head = "".join(
        f"<th{_cls(table, c, i)}>{html.escape(c)}</th>" for i, c in enumerate(table.columns)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{_cls(table, c, i)}>{_code(v) if c in table.code_columns else html.escape(v)}</td>"
            for i, (c, v) in enumerate(zip(table.columns, row, strict=True))
        )
        + "</tr>"
        for row in table.rows
    )
    return f'<table id="table-{table.key}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}'


def _code(command: str) -> str:
    """A shell command that wraps only between arguments: each flag with its value is one
    unbreakable span (copying the cell still gives the command, spaces included)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return html.escape(command)
    groups: list[list[str]] = []
    for word in words:
        if (
            groups
            and groups[-1][0].startswith("--")
            and len(groups[-1]) == 1
            and not word.startswith("--")
        ):
            groups[-1].append(word)
        else:
            groups.append([word])
    spans = (f'<span class="arg">{html.escape(shlex.join(g))}</span>' for g in groups)
    return " ".join(spans)


def _cls(table: Table, column: str, index: int) -> str:
    if column in table.code_columns:
        return ' class="code"'
    if index == 0 and column == "trial":
        return ""
    return ' class="text"' if column in TEXT_COLUMNS else ""


TEXT_COLUMNS = frozenset(
    {
        "group",
        "reason",
        "state",
        "compressed to",
        "compression and λ_max settings",
        "compression level",
    }
)


def _details(inner: str) -> str:
    return f"<details><summary>show the table</summary>{inner}</details>"
