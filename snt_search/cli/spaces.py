"""`snt-search spaces`: the study spaces found in ./studies, $SNT_SEARCH_STUDIES and plugins."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape
from rich.table import Table

from ..catalog import find_spaces
from ..space import SpaceError, load_space
from ._common import add_json, console, print_json

HELP = "list the study spaces (search spaces) that `study --space NAME` accepts"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spaces", help=HELP, description=HELP + ".")
    add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for entry in find_spaces().values():
        if entry.error:
            rows.append(
                {
                    "name": entry.name,
                    "origin": entry.origin,
                    "path": str(entry.path),
                    "error": entry.error,
                }
            )
            continue
        try:
            space = load_space(entry.path)
            row = {
                "name": entry.name,
                "origin": entry.origin,
                "path": str(entry.path),
                "description": space.description,
                "objectives": space.objectives,
                "sampler": space.sampler,
                "budgets": list(space.budgets),
                "error": None,
            }
        except SpaceError as exc:
            row = {
                "name": entry.name,
                "origin": entry.origin,
                "path": str(entry.path),
                "error": str(exc),
            }
        rows.append(row)
    if args.json:
        print_json(rows)
        return 0
    table = Table(title="study spaces")
    for col in ("name", "origin", "objectives", "budgets", "description"):
        table.add_column(col)
    for r in rows:
        if r["error"]:
            table.add_row(
                f"[red]{escape(r['name'])}[/]",
                escape(r["origin"]),
                "",
                "",
                f"[red]{escape(r['error'])}[/]",
            )
        else:
            objectives = ", ".join(f"{k} ({v[:3]})" for k, v in r["objectives"].items())
            table.add_row(
                r["name"],
                escape(r["origin"]),
                objectives,
                ", ".join(r["budgets"]),
                r["description"],
            )
    console.print(table)
    return 0
