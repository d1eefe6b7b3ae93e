"""Tables that read at any width, in a terminal or a pipe: nothing is ever cut to ``…``.

:func:`fit_table` takes columns in order of importance. Columns that hold one value in every
row move into a caption line under the table (``every row: transform=snt``); the others are
added while the table still fits the console's width (80 in a pipe unless ``COLUMNS`` says
otherwise); those that do not fit are named in the caption, which points at ``--json`` or
``--csv`` for them. Every cell folds rather than ends in an ellipsis, so even a required
column wider than the console loses no character.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "fit_table"]

UNLIMITED = 10_000  # a width no table reaches: measures a table's natural width
WRAP_MIN = 24  # the narrowest a prose column (a summary) is made before it is left out


@dataclass(frozen=True)
class Column:
    """One column: the row key, its (short) header, and how it is shown."""

    key: str
    header: str
    justify: str = "left"  # "left" | "right"
    required: bool = False  # always shown (the table's identity: trial, objectives, name)
    constant_to_caption: bool = True  # one value in every row: shown once, under the table
    wrap: bool = False  # long prose (a summary): may wrap at spaces instead of widening


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[dict[str, Any]],
    *,
    console: Console,
    title: str | None = None,
    fmt: Callable[[Any], str] = str,
    more: str = "--json",
) -> RenderableType:
    """A table of ``rows`` with as many of ``columns`` (in order) as fit ``console.width``.

    ``fmt`` turns a value into its cell text; a :class:`~rich.text.Text` value is kept as it
    is (to colour a cell), any other text is shown literally (never read as markup). ``more``
    names where the left-out columns are (e.g. ``"--json or --csv"``)."""
    cells = [{c.key: _text(row.get(c.key), fmt) for c in columns} for row in rows]
    present = [c for c in columns if c.required or any(r[c.key].plain for r in cells)]
    same: list[str] = []
    shown: list[Column] = []
    for col in present:
        values = {r[col.key].plain for r in cells}
        if not col.required and col.constant_to_caption and len(rows) > 1 and len(values) == 1:
            same.append(f"{col.header}={values.pop()}")
        else:
            shown.append(col)
    kept = [c for c in shown if c.required]
    left_out: list[str] = []
    for col in shown:
        if col in kept:
            continue
        candidate = [c for c in shown if c in kept or c is col]
        if _min_width(candidate, cells, console) <= console.width:
            kept.append(col)
        else:
            left_out.append(col.header)
    kept.sort(key=shown.index)
    caption = []
    if same:
        caption.append("every row: " + ", ".join(same))
    if left_out:
        caption.append(f"not shown at this width: {', '.join(left_out)} (see {more})")
    squeeze = _min_width(kept, cells, console) > console.width  # even the required ones
    table = _table(kept, cells, title=title, squeeze=squeeze)
    if not caption:
        return table
    return Group(table, Text("; ".join(caption), style="table.caption"))  # console-wide


def _table(
    columns: Sequence[Column],
    cells: Sequence[dict[str, Text]],
    *,
    title: str | None,
    squeeze: bool = False,
) -> Table:
    """``squeeze``: the columns are too wide together, so every cell may fold."""
    table = Table(
        title=None if title is None else Text(title, style="table.title"),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,  # two spaces between columns
    )
    for col in columns:
        widest = max([cell_len(col.header), *(r[col.key].cell_len for r in cells)])
        table.add_column(
            col.header,
            justify="right" if col.justify == "right" else "left",
            overflow="fold",
            no_wrap=not (col.wrap or squeeze),
            min_width=None if squeeze else min(widest, WRAP_MIN) if col.wrap else widest,
        )
    for row in cells:
        table.add_row(*(row[c.key] for c in columns))
    return table


def _min_width(
    columns: Sequence[Column], cells: Sequence[dict[str, Text]], console: Console
) -> int:
    """The narrowest the table can be with no cell folded (prose wrapped to ``WRAP_MIN``)."""
    table = _table(columns, cells, title=None)
    return console.measure(table, options=console.options.update(max_width=UNLIMITED)).minimum


def _text(value: Any, fmt: Callable[[Any], str]) -> Text:
    if isinstance(value, Text):
        return value
    return Text("" if value is None else fmt(value))
