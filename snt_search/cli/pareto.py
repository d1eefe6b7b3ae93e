"""`snt-search pareto`: the stored Pareto front of a study as a table, JSON, CSV, HTML or PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import add_json, console, print_json
from ._front import front_table

HELP = "show the Pareto front stored in a study"
EPILOG = """examples:
  snt-search pareto --study-name mixer_prune
  snt-search pareto --study-name mixer_prune --storage journal:runs/s.log --json
  snt-search pareto --study-name mixer_prune --csv front.csv --html front.html --png front.png

--html writes an offline page with Optuna's interactive Pareto-front plot (every finished
trial, the front highlighted) and the study's hypervolume history; --png draws the first two
objectives with matplotlib."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..storage import DEFAULT_STORAGE

    p = sub.add_parser(
        "pareto",
        help=HELP,
        description=HELP + " (non-dominated, feasible, finite finished trials).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--study-name", required=True, help="the study's name (default of `study`: the space name)"
    )
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"an existing Optuna storage URL, never created here (default: {DEFAULT_STORAGE})",
    )
    p.add_argument(
        "--out", type=Path, help="also write pareto.json and pareto.csv into this folder"
    )
    p.add_argument("--csv", type=Path, metavar="FILE", help="write the front as CSV to FILE")
    p.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write an interactive Pareto plot (plotly) to FILE",
    )
    p.add_argument(
        "--png", type=Path, metavar="FILE", help="write a Pareto plot (matplotlib) to FILE"
    )
    add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import optuna

    from ..pareto import empty_front_reason, front_header, front_rows, write_csv, write_front
    from ..storage import open_existing_storage

    storage = open_existing_storage(args.storage)  # reads only: never creates one
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if args.study_name not in names:
        raise ValueError(
            f"--study-name {args.study_name!r}: no such study in {args.storage}; "
            f"studies there: {', '.join(names) or '(none)'}"
        )
    study = optuna.load_study(study_name=args.study_name, storage=storage)
    rows = front_rows(study)
    _add_models_column(study, rows)
    written = []
    if args.out:
        written += write_front(rows, args.out, front_header(study))
    if args.csv:
        written.append(write_csv(rows, args.csv, front_header(study)))
    if args.html:
        from ..plots import write_html

        written.append(write_html(study, args.html))
    if args.png:
        from ..plots import write_png

        written.append(write_png(study, args.png))
    if args.json:
        print_json(rows)
        return 0
    history = study.user_attrs.get("hypervolume_history") or []
    hv = f", hypervolume {history[-1][1]:.4g}" if history else ""
    title = f"Pareto front of {args.study_name} ({len(study.trials)} trials{hv})"
    print_front(rows, title=title, empty=empty_front_reason(study))
    if written:
        console.print("written: " + ", ".join(str(f) for f in written))
    return 0


def print_front(
    rows: list[dict[str, Any]], *, title: str, empty: str = "no finished trial yet"
) -> None:
    """Print ``rows`` as a table; no rows: ``title: empty`` (why the front is empty)."""
    if not rows:
        console.print(f"{title}: {empty}")
        return
    console.print(front_table(rows, title=title, console=console))


def _add_models_column(study: Any, rows: list[dict[str, Any]]) -> None:
    """``models``: yes / no / removed per front trial (``export.artifacts.models_status``)."""
    from ..export.artifacts import models_status

    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for row in rows:
        row["models"] = models_status(study, trials[row["trial"]])
