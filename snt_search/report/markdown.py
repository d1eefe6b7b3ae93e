"""The report's Markdown summary (``report.md``): findings and the same tables, no plots.

Cells are escaped for GitHub-flavoured Markdown tables (``|`` and line breaks); commands are
shown as inline code, so they can be copied as they are.
"""

from __future__ import annotations

from .data import StudyData
from .summary import Summary, Table

__all__ = ["render_markdown"]

# Tables in the order they appear; "trials" is left to report.html and trials.csv.
ORDER = ("front", "levels", "groups", "cost", "failures", "rerun")


def render_markdown(data: StudyData, summary: Summary, *, html_name: str = "report.html") -> str:
    """``report.md`` for ``data``; ``html_name`` is the HTML report it points to."""
    objectives = ", ".join(
        f"{o} ({d})" for o, d in zip(data.objectives, data.directions, strict=False)
    )
    lines = [
        f"# snt-search report: {data.name}",
        "",
        f"Storage `{data.storage or '?'}`"
        + "".join(f", {k} **{data.attrs[k]}**" for k in ("space", "budget") if k in data.attrs)
        + f"; objectives: {objectives}. Plots: [{html_name}]({html_name}).",
        "",
        "## Summary",
        "",
        *(f"- {_inline(line)}" for line in summary.findings),
    ]
    for key in ORDER:
        table = summary.tables[key]
        if key == "levels" and not table.rows:
            continue
        lines += ["", *(_commands(table) if table.code_columns else _table(table))]
    return "\n".join(lines) + "\n"


def _table(table: Table) -> list[str]:
    out = [f"## {table.title}", ""]
    if not table.rows:
        out.append("None.")
    else:
        out.append("| " + " | ".join(_cell(c) for c in table.columns) + " |")
        out.append("|" + "|".join(" --- " for _ in table.columns) + "|")
        for row in table.rows:
            cells = [
                f"`{v}`" if c in table.code_columns and "`" not in v else _cell(v)
                for c, v in zip(table.columns, row, strict=True)
            ]
            out.append(
                "| "
                + " | ".join(c.replace("|", "\\|") if c.startswith("`") else c for c in cells)
                + " |"
            )
    if table.note:
        out += ["", _inline(table.note)]
    return out


def _commands(table: Table) -> list[str]:
    """A table with a command column as a list: one heading line and a shell block per row."""
    out = [f"## {table.title}", ""]
    if table.note:
        out += [_inline(table.note), ""]
    code = [i for i, c in enumerate(table.columns) if c in table.code_columns]
    for row in table.rows:
        label = "; ".join(v for i, v in enumerate(row[1:], 1) if i not in code and v != "–")
        out.append(f"- trial {row[0]} ({_inline(label)}):")
        for i in code:
            out += ["", "  ```bash", f"  {row[i]}", "  ```", ""]
    return out


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")


def _inline(text: str) -> str:
    return " ".join(text.split())
