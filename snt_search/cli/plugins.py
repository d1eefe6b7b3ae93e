"""`snt-search plugins`: every installed plugin with its origin, and the broken ones with why.

Listing plugins imports them (that is how a broken one is found), so this command pays for
torch and timm, which the built-in plugins import: that is its start-up floor."""

from __future__ import annotations

import argparse
from typing import Any

from rich.text import Text

from ._common import add_json, console, print_json
from ._tables import Column, fit_table

HELP = "list installed plugins (kind, name, origin, summary) and broken ones with the reason"
KINDS = ("dataset", "backbone", "transform", "optimizer", "compressor")
COLUMNS = [
    Column("kind", "kind", required=True),
    Column("name", "name", required=True, constant_to_caption=False),
    Column("origin", "origin"),
    Column("summary", "summary", required=True, wrap=True, constant_to_caption=False),
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plugins",
        help=HELP,
        description=f"{HELP}. Third-party plugins are skipped when "
        "SNT_SEARCH_DISABLE_PLUGIN_AUTOLOAD=1.",
    )
    p.add_argument("--kind", choices=KINDS, help="only this kind")
    p.add_argument(
        "--strict", action="store_true", help="exit with an error if any plugin is broken"
    )
    add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..registry import get_registry

    registry = get_registry()
    records = [r for r in registry if args.kind in (None, r.kind)]
    if args.json:
        print_json([r.as_dict() for r in records])
    else:
        rows: list[dict[str, Any]] = []
        for r in records:
            if r.ok:
                rows.append(
                    {"kind": r.kind, "name": r.name, "origin": r.origin, "summary": r.summary}
                )
            else:
                rows.append(
                    {
                        "kind": r.kind,
                        "name": Text(r.name, style="red"),
                        "origin": r.origin,
                        "summary": Text(f"BROKEN: {r.error or ''}", style="red"),
                    }
                )
        console.print(fit_table(COLUMNS, rows, console=console, title="snt-search plugins"))
    registry.check(args.strict)
    return 0
