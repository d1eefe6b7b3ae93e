"""`snt-search export`: a trial's trained or compressed model as a self-contained folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_json, console, print_json

HELP = "write a finished trial's model to a folder: model.safetensors, config.json, README.md"
EPILOG = """examples:
  snt-search export --study-name mixer_prune --trial 3 --out models/mixer-t3
  snt-search export --study-name mixer_prune --trial 3 --which trained --out models/mixer-t3-fp32
  snt-search export --study-name run1 --storage postgresql://db/snt --trial 7 --out m7 \\
      --artifacts s3://bucket/snt-models

Then, in Python:  model = snt_search.load_model("models/mixer-t3")

Models are stored by `snt-search study` as Optuna artifacts (--keep-models front keeps the
Pareto front's, the default); pick a trial with `snt-search pareto`. The folder is written
whole or not at all, and an existing --out is never overwritten."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..storage import DEFAULT_STORAGE

    p = sub.add_parser(
        "export",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--study-name", required=True, help="the study's name")
    p.add_argument("--trial", type=int, required=True, help="the trial's number")
    p.add_argument("--out", type=Path, required=True, help="the folder to create (must not exist)")
    p.add_argument(
        "--which",
        choices=("compressed", "trained"),
        default="compressed",
        help="the compressed model (default) or the trained one before compression",
    )
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"an existing Optuna storage URL, never created here (default: {DEFAULT_STORAGE})",
    )
    p.add_argument(
        "--artifacts",
        metavar="DIR|s3://BUCKET/PREFIX",
        help="the artifact store (default: the one recorded with the trial)",
    )
    add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import optuna

    from ..export.folder import check_out, export_trial
    from ..storage import open_existing_storage

    check_out(args.out)
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
    done = export_trial(study, trial, args.out, which=args.which, store=args.artifacts)
    if args.json:
        print_json(done)
        return 0
    console.print(
        f"exported trial {trial.number}'s {args.which} model of study {study.study_name} to "
        f"{args.out}: model.safetensors ({done['model_bytes'] / 1024:.1f} KiB), config.json, "
        f"README.md; load it with snt_search.load_model({str(args.out)!r})",
        markup=False,
        highlight=False,
    )
    return 0
