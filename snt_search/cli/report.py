"""`snt-search report`: an HTML report and a Markdown summary of one stored study."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from ._common import add_json, console, print_json

HELP = "write an HTML report (plots, tables, re-run commands) and report.md of a study"
EPILOG = """examples:
  snt-search report --study-name mixer_prune --out runs/mixer_prune/report
  snt-search report --study-name tiny --storage sqlite:///other.db --out report --ci bootstrap
  snt-search report --study-name mixer_prune --out report --json   # digest on stdout

The folder gets report.html (self-contained, opens offline), report.md and trials.csv.
See docs/report.md for what each section shows and how to read the correlation."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..report.stats import METHODS
    from ..storage import DEFAULT_STORAGE

    p = sub.add_parser(
        "report",
        help=HELP,
        description=textwrap.fill(
            HELP + ": the Pareto front, lambda_max vs accuracy drop with Spearman's rho and its "
            "confidence interval, accuracy under compression and training cost per transform x "
            "optimizer, failed trials and the command re-running each trial.",
            width=88,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--study-name", required=True, help="the study's name (see `snt-search study`)")
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"an existing Optuna storage URL, never created here (default: {DEFAULT_STORAGE})",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for report.html, report.md and trials.csv (default: runs/<study-name>)",
    )
    p.add_argument(
        "--ci",
        choices=METHODS,
        default="fisher",
        help="confidence interval of Spearman's rho: Fisher z (default) or percentile bootstrap",
    )
    p.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        help="confidence level of the interval (default: 0.95)",
    )
    add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..report import write_report
    from ..storage import require_storage

    require_storage(args.storage)  # reads only: a missing storage is an error, never created
    out = args.out if args.out is not None else Path("runs") / args.study_name
    try:
        files = write_report(
            args.study_name, args.storage, out, ci_method=args.ci, confidence=args.confidence
        )
    except ImportError as exc:  # plotly or scipy missing: say what to install
        raise ValueError(missing_extra(exc)) from exc
    if args.json:
        print_json(files.as_dict())
        return 0
    for line in files.summary.findings:
        console.print(f"- {line}", markup=False, soft_wrap=True)
    console.print(
        f"wrote {files.html}, {files.markdown} and {files.csv}", markup=False, soft_wrap=True
    )
    return 0


def missing_extra(exc: ImportError) -> str:
    """The error for a package the report needs and this environment lacks, with the fix."""
    if "pip install" in str(exc):
        return str(exc)
    package = (exc.name or "a package").split(".")[0]
    return (
        f"snt-search report needs {package}, which is not installed ({exc}); "
        f"fix: pip install 'snt-search[report]'"
    )
