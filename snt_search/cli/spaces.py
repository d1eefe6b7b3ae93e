"""`snt-search spaces`: the study spaces found in ./studies, $SNT_SEARCH_STUDIES and plugins;
``--check SPACE`` checks one against the installed plugins without running anything."""

from __future__ import annotations

import argparse
from typing import Any

from rich.text import Text

from ._common import add_json, console, print_json
from ._tables import Column, fit_table

HELP = "list the study spaces (search spaces) that `study --space NAME` accepts"
EPILOG = """examples:
  snt-search spaces
  snt-search spaces --check mixer_prune          # plugins, ranges, budgets; runs nothing
  snt-search spaces --check my_space.toml --json

--check loads the space, resolves its plugins (unknown or broken ones are an error), checks
every parameter's name, type and range, lists the budgets, and counts the distinct plugin
combinations and, when no parameter is continuous, the distinct configurations."""

COLUMNS = [
    Column("name", "name", required=True, constant_to_caption=False),
    Column("objectives", "objectives"),
    Column("budgets", "budgets"),
    Column("sampler", "sampler"),
    Column("origin", "origin"),
    Column("description", "description", wrap=True, constant_to_caption=False),
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spaces",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--check",
        metavar="SPACE",
        help="check this space (name or .toml file) without running it, and say what it searches",
    )
    p.add_argument("--budget", help="with --check: also check that this budget exists")
    add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.check is not None:
        return check(args.check, budget=args.budget, as_json=args.json)
    if args.budget is not None:
        raise ValueError("--budget only applies with --check SPACE")
    rows = list_spaces()
    if args.json:
        print_json(rows)
        return 0
    shown = []
    for r in rows:
        if r["error"]:
            shown.append(
                {
                    "name": Text(r["name"], style="red"),
                    "origin": r["origin"],
                    "description": Text(r["error"], style="red"),
                }
            )
        else:
            by_direction: dict[str, list[str]] = {}
            for name, direction in r["objectives"].items():
                by_direction.setdefault(direction[:3], []).append(name)
            objectives = "; ".join(f"{d} {', '.join(n)}" for d, n in by_direction.items())
            shown.append({**r, "objectives": objectives, "budgets": ", ".join(r["budgets"])})
    console.print(fit_table(COLUMNS, shown, console=console, title="study spaces"))
    return 0


def list_spaces() -> list[dict[str, Any]]:
    """One JSON-ready row per space found; ``error`` says why one cannot be loaded."""
    from ..catalog import find_spaces
    from ..space import SpaceError, load_space

    rows: list[dict[str, Any]] = []
    for entry in find_spaces().values():
        row: dict[str, Any] = {"name": entry.name, "origin": entry.origin, "path": str(entry.path)}
        if entry.error:
            rows.append({**row, "error": entry.error})
            continue
        try:
            space = load_space(entry.path)
        except SpaceError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        rows.append(
            {
                **row,
                "description": space.description,
                "objectives": space.objectives,
                "sampler": space.sampler,
                "budgets": list(space.budgets),
                "error": None,
            }
        )
    return rows


def check(name_or_path: str, *, budget: str | None = None, as_json: bool = False) -> int:
    """``spaces --check``: resolve and check one space; a bad one raises a one-line error."""
    from ..catalog import resolve_space
    from ..registry import get_registry
    from ._check import describe_space, print_description

    info = describe_space(resolve_space(name_or_path), get_registry(), budget)
    if as_json:
        print_json(info)
    else:
        print_description(info, console)
    return 0
