"""`snt-search study`: run or resume a multi-objective search over a study space."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from ._common import add_json, console, err_console, parse_sets, print_json
from .pareto import print_front

if TYPE_CHECKING:
    from ..driver import StudyOptions, StudyOutcome
    from ..registry import Registry
    from ..space import Space

HELP = "search a space: train, measure lambda_max, compress and score each trial (resumable)"
EPILOG = """examples:
  snt-search study --space mixer_prune --budget smoke --trials 4 --dataset digits
  snt-search study --space studies/mixer_prune.toml --set backbone.mixer_s.num_blocks=2
  snt-search study --space mixer_prune --storage postgresql://localhost/snt --study-name run1
  snt-search study --space mixer_prune --trials 40 --workers 2 --storage journal:runs/s.log

Re-running the same command resumes the study: finished trials are kept and only the
missing ones run; a trial cut short (Ctrl-C, a killed worker) is re-run from its last
epoch checkpoint. Any number of such commands, on any number of machines, may share one
study through a PostgreSQL/MySQL URL or a journal file. Results: the Optuna storage (default
sqlite:///snt-search.db) and <out>/pareto.json, <out>/pareto.csv.

--trials N counts finished trials, all commands sharing the study together: a trial is
finished when it is complete, early-stopped or failed with a reason. A trial cut short (its
worker killed or interrupted) is re-queued and does not count, nor does a surplus trial."""
TRIALS_RULE = (
    "a finished trial is complete, early-stopped or failed with a reason; each counts toward "
    "--trials"
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..ray import add_ray_arguments
    from ..storage import DEFAULT_STORAGE

    p = sub.add_parser(
        "study",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--space",
        required=True,
        help="space name (see `snt-search spaces`) or path to a .toml file",
    )
    p.add_argument(
        "--budget",
        default="smoke",
        help="budget defined in the space: smoke, short, paper (default: smoke)",
    )
    p.add_argument(
        "--trials",
        type=_positive,
        default=4,
        help="finished trials the study should have: complete, early-stopped or failed with a "
        "reason; a re-queued or surplus trial does not count (default: 4)",
    )
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage URL (default: {DEFAULT_STORAGE})",
    )
    p.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes sharing the storage, each with cores/N torch threads (default: 1)",
    )
    p.add_argument("--study-name", help="study name (default: the space's name)")
    p.add_argument(
        "--out", type=Path, help="folder for pareto.json/csv (default: runs/<study-name>)"
    )
    p.add_argument(
        "--dataset", help="use this dataset plugin instead of the space's (e.g. digits offline)"
    )
    p.add_argument("--data-dir", type=Path, help="where the dataset finds (or downloads) its files")
    p.add_argument("--no-download", action="store_true", help="never download data sets")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a parameter, TOML value syntax: --set train.lr=0.001 --set optimizer.sam.rho=0.1",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the space, plugins, parameters and budget, say what it searches; run nothing",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show Optuna's warning with the traceback of each failed trial",
    )
    p.add_argument(
        "--keep-models",
        choices=("front", "all", "none"),
        default="front",
        help="store finished trials' trained and compressed models (for `snt-search export`): "
        "front = only while on the Pareto front (default), all, none",
    )
    p.add_argument(
        "--artifacts",
        metavar="DIR|s3://BUCKET/PREFIX",
        help="where models are stored (default: <out>/artifacts, i.e. runs/<study>/artifacts)",
    )
    p.add_argument(
        "--callback",
        action="append",
        default=[],
        metavar="MODULE:OBJECT",
        help="an Optuna callback(study, trial) called after each trial, e.g. a W&B or MLflow "
        "callback made in your module (repeatable; docs/studies.md)",
    )
    p.add_argument(
        "--track",
        action="append",
        default=[],
        choices=("tensorboard",),
        help="write every finished trial to an experiment tracker: tensorboard (one log dir "
        "per trial under --track-dir; `tensorboard --logdir` it)",
    )
    p.add_argument(
        "--track-dir", type=Path, help="where trackers write (default: <out>/tensorboard)"
    )
    add_ray_arguments(p)
    add_json(p)
    p.set_defaults(run=run)


def _tracking_dir(space: Space) -> Path | None:
    """The folder the space's ``[tracking]`` names, if it names one."""
    folders = [f for f in space.tracking.values() if f]
    return Path(folders[0]) if folders else None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from ..catalog import resolve_space, start_notes
    from ..driver import StudyAborted, StudyOptions, run_study
    from ..ray import options_from_args, run_study_ray
    from ..registry import get_registry

    registry = get_registry()
    space = resolve_space(args.space)
    plugin_overrides = {"dataset": args.dataset} if args.dataset else {}
    sets = parse_sets(args.set)
    if plugin_overrides or sets:
        space = space.with_overrides(plugin_overrides, sets)
    for note in start_notes(args.space, space, registry):  # taken plugin names, space clashes
        err_console.print(f"[yellow]note:[/] {escape(note)}")
    options = StudyOptions(
        budget=args.budget,
        n_trials=args.trials,
        storage=args.storage,
        study_name=args.study_name,
        out_dir=args.out,
        data_dir=args.data_dir,
        download=not args.no_download,
        device=args.device,
        show_progress=not args.json,
        workers=args.workers,
        verbose=args.verbose,
        keep_models=args.keep_models,
        artifacts=args.artifacts,
        callbacks=tuple(args.callback),
        track=tuple(dict.fromkeys([*args.track, *space.tracking])),
        track_dir=args.track_dir or _tracking_dir(space),
    )
    ray_options = options_from_args(args)
    if args.dry_run:
        return _dry_run(space, options, registry, as_json=args.json)
    try:
        if ray_options is not None:
            outcome = run_study_ray(space, options, ray_options, registry=registry)
        else:
            outcome = run_study(space, options, registry=registry)
    except StudyAborted as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    if args.json:
        print_json(
            {
                "study_name": outcome.study_name,
                "storage": outcome.storage,
                "trials": args.trials,
                "ran": outcome.ran,
                "finished": outcome.finished + outcome.failed + outcome.pruned,
                "complete": outcome.finished,
                "failed": outcome.failed,
                "pruned": outcome.pruned,
                "problems": outcome.problems,
                "pareto_front": outcome.front,
                "files": [str(f) for f in outcome.files],
            }
        )
        return 1 if outcome.problems else 0
    console.print(summary(outcome, args.trials), markup=False, highlight=False)
    for problem in outcome.problems:
        err_console.print(
            f"[yellow]warning:[/] {escape(problem)}; its trial is re-queued once its heartbeat "
            f"goes stale: run the same command again to finish the study"
        )
    print_front(
        outcome.front, title=f"Pareto front of {outcome.study_name}", empty=_empty_front(outcome)
    )
    console.print("written: " + ", ".join(str(f) for f in outcome.files))
    return 1 if outcome.problems else 0


def summary(outcome: StudyOutcome, trials: int) -> str:
    """The closing line: finished trials by state, against ``--trials`` (:data:`TRIALS_RULE`);
    ``outcome.finished`` counts the COMPLETE ones."""
    total = outcome.finished + outcome.failed + outcome.pruned
    states = [f"{outcome.finished} complete"]
    states += [f"{outcome.failed} failed"] if outcome.failed else []
    states += [f"{outcome.pruned} early-stopped"] if outcome.pruned else []
    rule = f" ({TRIALS_RULE})" if outcome.failed or outcome.pruned else ""
    return (
        f"study {outcome.study_name}: {total} finished of --trials {trials}: "
        f"{', '.join(states)}{rule}; this command ran {outcome.ran} ({outcome.storage})"
    )


def _empty_front(outcome: StudyOutcome) -> str:
    """Why the front is empty: no COMPLETE trial, else :func:`~snt_search.pareto.
    empty_front_reason` (infeasible or non-finite trials), read back from the storage."""
    if outcome.front:
        return ""
    if not outcome.finished:
        return "no complete trial yet"
    import optuna

    from ..pareto import empty_front_reason
    from ..storage import open_existing_storage

    storage = open_existing_storage(outcome.storage)
    return empty_front_reason(optuna.load_study(study_name=outcome.study_name, storage=storage))


def _dry_run(space: Space, options: StudyOptions, registry: Registry, *, as_json: bool) -> int:
    """``--dry-run``: check everything a run would use, say what it would do, run nothing."""
    from ._check import describe_space, print_description

    info = describe_space(space, registry, options.budget)
    name = options.name(space)
    plan = (
        f"dry run, nothing ran: the study {name!r} in {options.storage} would run until "
        f"{options.n_trials} trials have finished (budget {options.budget}, "
        f"{options.workers} worker(s))"
    )
    if as_json:
        print_json(
            {
                **info,
                "study_name": name,
                "storage": options.storage,
                "trials": options.n_trials,
                "dry_run": True,
            }
        )
    else:
        print_description(info, console)
        console.print(plan, markup=False, highlight=False)
    return 0
