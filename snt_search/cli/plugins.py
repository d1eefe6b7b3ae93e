"""`snt-search plugins`: every installed plugin with its origin, and the broken ones with why."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from ..registry import AUTOLOAD_ENV, get_registry
from ._common import add_json, console, print_json

HELP = "list installed plugins (kind, name, origin, summary) and broken ones with the reason"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plugins",
        help=HELP,
        description=f"{HELP}. Third-party plugins are skipped when {AUTOLOAD_ENV}=1.",
    )
    p.add_argument(
        "--kind",
        choices=["dataset", "backbone", "transform", "optimizer", "compressor"],
        help="only this kind",
    )
    p.add_argument(
        "--strict", action="store_true", help="exit with an error if any plugin is broken"
    )
    add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    registry = get_registry()
    records = [r for r in registry if args.kind in (None, r.kind)]
    if args.json:
        print_json([r.as_dict() for r in records])
    else:
        table = Table(title="snt-search plugins")
        for col in ("kind", "name", "origin", "summary"):
            table.add_column(col)
        for r in records:
            if r.ok:
                table.add_row(r.kind, r.name, escape(r.origin), escape(r.summary))
            else:
                table.add_row(
                    r.kind,
                    f"[red]{escape(r.name)}[/]",
                    escape(r.origin),
                    f"[red]BROKEN: {escape(r.error or '')}[/]",
                )
        console.print(table)
    registry.check(args.strict)
    return 0
