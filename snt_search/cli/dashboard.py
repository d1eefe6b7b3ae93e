"""`snt-search dashboard`: browse a storage's studies in optuna-dashboard (trials, attributes,
the Pareto front and the hypervolume history)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import add_json, console, print_json

HELP = "open a storage in optuna-dashboard: studies, trials, their attributes, Pareto fronts"
EPILOG = """examples:
  snt-search dashboard                                   # sqlite:///snt-search.db on :8080
  snt-search dashboard --storage journal:runs/s.log --port 8081
  snt-search dashboard --storage postgresql://user@db/snt --host 0.0.0.0

Every trial's configuration, metrics, per-epoch curve, reports and failure reason are its
user attributes; each study keeps its Pareto front and hypervolume history as study user
attributes. A trial's stored models are listed on its page as artifacts, served from the
artifact stores the storage's trials recorded (--artifacts to point elsewhere, e.g. a moved
folder). Needs optuna-dashboard: pip install 'snt-search[dashboard]'."""


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
    p.add_argument(
        "--artifacts",
        metavar="DIR|s3://BUCKET/PREFIX",
        help="the artifact store of the models (default: the stores the trials recorded)",
    )
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
    stores = [args.artifacts] if args.artifacts else recorded_stores(storage)
    artifact_store = _open_stores(stores, strict=bool(args.artifacts))
    if args.json:
        print_json({"url": url, "storage": args.storage, "artifacts": stores})
        sys.stdout.flush()  # before serving: a pipe must see it now
    else:
        console.print(f"optuna-dashboard for {args.storage} on {url} (Ctrl-C stops it)")
        if stores:
            console.print("models served from: " + ", ".join(stores))
    try:
        run_server(storage, host=args.host, port=args.port, artifact_store=artifact_store)
    except KeyboardInterrupt:
        console.print("dashboard stopped")
    return 0


def recorded_stores(storage: Any) -> list[str]:
    """The artifact stores (``model_store``) the storage's trials recorded, in first-seen
    order."""
    import optuna

    from ..export.artifacts import STORE_ATTR

    found: list[str] = []
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for t in study.get_trials(deepcopy=False):
            url = t.user_attrs.get(STORE_ATTR)
            if url and url not in found:
                found.append(str(url))
    return found


def _open_stores(urls: list[str], *, strict: bool) -> Any:
    """One store for optuna-dashboard, None without stores. A recorded folder that is
    missing is skipped (its trials' models cannot be shown); with ``strict`` (--artifacts)
    it is an error that says so."""
    from ..export.store import AnyOfStores, open_store

    stores = []
    for url in urls:
        try:
            stores.append(open_store(url, create=False))
        except FileNotFoundError:
            if strict:
                raise
            continue
    return AnyOfStores(stores) if stores else None
