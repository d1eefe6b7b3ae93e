"""`snt-search dashboard`: browse a storage's studies in optuna-dashboard (trials, attributes,
the Pareto front and the hypervolume history)."""

from __future__ import annotations

import argparse
import sys

from ._common import add_json, console, print_json

HELP = "open a storage in optuna-dashboard: studies, trials, their attributes, Pareto fronts"
EPILOG = """examples:
  snt-search dashboard                                   # sqlite:///snt-search.db on :8080
  snt-search dashboard --storage journal:runs/s.log --port 8081
  snt-search dashboard --storage postgresql://user@db/snt --host 0.0.0.0

Every trial's configuration, metrics, per-epoch curve, reports and failure reason are its
user attributes; each study keeps its Pareto front and hypervolume history as study user
attributes. Needs optuna-dashboard: pip install 'snt-search[dashboard]'."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..storage import DEFAULT_STORAGE

    p = sub.add_parser(
        "dashboard",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"an existing Optuna storage URL, never created here (default: {DEFAULT_STORAGE})",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine)",
    )
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    add_json(p)  # prints {"url": ..., "storage": ...} once, then serves
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise ValueError(
            "the dashboard needs optuna-dashboard, which is not installed; "
            "pip install 'snt-search[dashboard]' (or pip install optuna-dashboard)"
        ) from None
    from ..storage import open_existing_storage

    storage = open_existing_storage(args.storage)  # a viewer: never creates a storage
    url = f"http://{args.host}:{args.port}/dashboard/"
    if args.json:
        print_json({"url": url, "storage": args.storage})
        sys.stdout.flush()  # before serving: a pipe must see it now
    else:
        console.print(f"optuna-dashboard for {args.storage} on {url} (Ctrl-C stops it)")
    try:
        run_server(storage, host=args.host, port=args.port)
    except KeyboardInterrupt:
        console.print("dashboard stopped")
    return 0
