"""`snt-search rerun`: run one stored trial's whole pipeline again and compare its metrics.

The trial's ``config`` user attribute (its :class:`~snt_search.trial_spec.TrialSpec`, stored
by the driver) is rebuilt with :meth:`TrialSpec.from_dict` and run through
:func:`snt_search.pipeline.run_trial`: train, lambda_max, compress, evaluate. The stored and
the new metrics are printed side by side. On the CPU the same seed gives the same numbers
when the torch thread count is the same as the run that stored them (a study's worker uses
cores/workers threads); another thread count changes the order of float sums, so accuracies
can move by a test image and lambda_max in its last digits. Times never repeat exactly.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ._common import add_json, console, err_console, print_json

HELP = "re-run a stored trial (train, lambda_max, compress, evaluate) and compare its metrics"
EPILOG = """examples:
  snt-search rerun --study-name mixer_prune --trial 3
  snt-search rerun --study-name run1 --storage postgresql://db/snt --trial 7 --device cuda --json

The trial's stored config (`config` user attribute) is run again as it was: same plugins,
parameters, data subsets, budget and seed. Nothing is written to the storage."""

# Measured durations: never the same twice, shown but not compared.
TIMINGS = frozenset({"train_time_s", "images_per_s", "sharpness_time_s", "latency_ms"})


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..storage import DEFAULT_STORAGE

    p = sub.add_parser(
        "rerun",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--study-name", required=True, help="the study's name")
    p.add_argument("--trial", type=int, required=True, help="the trial's number")
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"an existing Optuna storage URL, never created here (default: {DEFAULT_STORAGE})",
    )
    p.add_argument("--device", help="torch device (default: the one the trial ran on)")
    p.add_argument(
        "--data-dir", type=Path, help="where the dataset finds its files (default: stored)"
    )
    add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..pipeline import run_trial
    from ..trial_spec import TrialSpec

    study, trial = _load_trial(args)
    config = trial.user_attrs.get("config")
    if not isinstance(config, dict):
        raise ValueError(
            f"--trial {args.trial}: trial {trial.number} of study {study.study_name!r} has no "
            "stored 'config' (it never started its pipeline, e.g. a surplus trial). Fix: pick "
            f"a finished trial from `snt-search pareto --study-name {study.study_name}`."
        )
    spec = TrialSpec.from_dict(config)
    if args.device:
        spec = replace(spec, device=args.device)
    if args.data_dir:
        spec = replace(spec, data_dir=args.data_dir)
    if not args.json:
        plugins = ", ".join(f"{k} {v}" for k, v in spec.plugins.items())
        err_console.print(f"re-running trial {trial.number} of {study.study_name}: {plugins}")
    result = run_trial(spec)
    rows = compare(trial.user_attrs, result.metrics)
    out = {
        "study_name": study.study_name,
        "trial": trial.number,
        "state": trial.state.name,
        "config": spec.as_dict(),
        "metrics": rows,
        "reproduced": all(r["same"] for r in rows if r["same"] is not None),
    }
    if args.json:
        print_json(out)
        return 0
    _print(out)
    return 0


def compare(stored: dict[str, Any], new: dict[str, float]) -> list[dict[str, Any]]:
    """One row per new metric: ``stored``, ``new``, ``diff`` and ``same`` (equal to 1e-9
    relative; ``None`` for timings and for metrics the trial did not store)."""
    rows = []
    for key, value in new.items():
        old = stored.get(key)
        old = float(old) if isinstance(old, int | float) else None
        same = None
        if old is not None and key not in TIMINGS:
            same = math.isclose(old, value, rel_tol=1e-9, abs_tol=1e-12)
        diff = None if old is None else value - old
        rows.append({"metric": key, "stored": old, "new": value, "diff": diff, "same": same})
    return rows


def _load_trial(args: argparse.Namespace) -> tuple[Any, Any]:
    import optuna

    from ..storage import open_existing_storage

    storage = open_existing_storage(args.storage)  # reads only: never creates one
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if args.study_name not in names:
        raise ValueError(
            f"--study-name {args.study_name!r}: no such study in {args.storage}; "
            f"studies there: {', '.join(names) or '(none)'}"
        )
    study = optuna.load_study(study_name=args.study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    trial = next((t for t in trials if t.number == args.trial), None)
    if trial is None:
        span = f"0..{len(trials) - 1}" if trials else "none yet"
        raise ValueError(
            f"--trial {args.trial}: study {args.study_name!r} has no such trial (trials: "
            f"{span}). Fix: pick one from `snt-search pareto --study-name {args.study_name}`."
        )
    return study, trial


def _print(out: dict[str, Any]) -> None:
    from ._tables import Column, fit_table

    columns = [
        Column("metric", "metric", required=True),
        Column("stored", "stored", "right", required=True),
        Column("new", "re-run", "right", required=True),
        Column("diff", "diff", "right", required=True),
        Column("same", "same", required=True, constant_to_caption=False),
    ]
    rows = [
        {
            **r,
            "same": "timing"
            if r["metric"] in TIMINGS
            else {True: "yes", False: "NO"}.get(r["same"], "-"),
        }
        for r in out["metrics"]
    ]
    title = f"trial {out['trial']} of {out['study_name']} ({out['state']}), stored vs re-run"
    console.print(fit_table(columns, rows, console=console, title=title, fmt=_fmt))
    verdict = "reproduced" if out["reproduced"] else "NOT reproduced (see the rows marked NO)"
    console.print(f"every compared metric {verdict}; timings are never compared")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
