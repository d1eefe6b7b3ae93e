"""`snt-search train`: train one model (no search) and report its accuracy and throughput."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import add_json, console, parse_sets, print_json

if TYPE_CHECKING:
    from ..training import EpochStats
    from ..trial_spec import TrialSpec

HELP = "train one dataset x backbone x transform x optimizer and save it (safetensors)"
EPILOG = """examples:
  snt-search train --dataset digits --backbone mixer_s --transform snt --optimizer sam --epochs 2
  snt-search train --dataset imagefolder --data-dir DIR --backbone resnet20 --transform none \\
      --optimizer sgd --set train.lr=0.1 --set optimizer.sgd.momentum=0.9 --out runs/r20"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, help="dataset plugin (see `snt-search plugins`)")
    p.add_argument("--backbone", required=True, help="backbone plugin")
    p.add_argument("--transform", default="none", help="transform plugin (default: none)")
    p.add_argument("--optimizer", default="adam", help="optimizer plugin (default: adam)")
    p.add_argument("--epochs", type=int, default=1, help="epochs (default: 1)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="base learning rate (default: 1e-3)")
    p.add_argument("--train-subset", type=int, help="use a seeded subset of the training images")
    p.add_argument("--test-subset", type=int, help="use a seeded subset of the test images")
    p.add_argument("--data-dir", type=Path, help="where the dataset finds its files")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of init, data order and augmentation")
    p.add_argument("--out", type=Path, help="folder for model.safetensors (default: do not save)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="train.<field>=V or <kind>.<plugin>.<param>=V, e.g. --set optimizer.sam.rho=0.1",
    )
    add_json(p)
    p.set_defaults(run=run)


def spec_from_args(args: argparse.Namespace) -> TrialSpec:
    """A TrialSpec for the chosen plugins; each --set is checked like a space's params, and an
    error names that --set, what is wrong and what is allowed (ValueError)."""
    from ..config import TrainConfig
    from ..registry import get_registry
    from ..space import override_problem, param_problem, set_option
    from ..trial_spec import TrialSpec

    plugins = {k: getattr(args, k) for k in ("dataset", "backbone", "transform", "optimizer")}
    registry = get_registry()
    for kind, name in plugins.items():
        registry.get(kind, name)  # unknown names fail here, with the alternatives
    train_values: dict[str, Any] = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
    }
    params: dict[str, dict[str, Any]] = {}
    chosen = {kind: (name,) for kind, name in plugins.items()}
    for key, value in parse_sets(args.set).items():
        problem = override_problem(key, value, chosen) or param_problem(key, value, registry)
        if problem is not None:
            raise ValueError(f"{set_option(key, value)}: {problem}")
        parts = key.split(".")
        if parts[0] == "train":
            train_values[parts[1]] = value
        else:
            params.setdefault(parts[0], {})[parts[2]] = value
    cfg = TrainConfig(**train_values)
    from ..config import Budget

    budget = Budget(
        name="train",
        epochs=args.epochs,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
    )
    return TrialSpec(
        plugins=plugins,
        params=params,
        train=cfg,
        budget=budget,
        seed=args.seed,
        data_dir=args.data_dir,
        device=args.device,
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import save_checkpoint
    from ..pipeline import build_model, load_data
    from ..registry import get_registry
    from ..training import train

    spec = spec_from_args(args)
    registry = get_registry()
    data = load_data(spec, registry)
    model, report = build_model(spec, data, registry)
    optimizer = registry.get("optimizer", spec.plugins["optimizer"])

    def show(stats: EpochStats) -> None:
        if not args.json:
            console.print(
                f"epoch {stats.epoch}/{spec.train.epochs}: loss {stats.loss:.4f}  train acc "
                f"{stats.train_accuracy:.2f}%  test acc {stats.test_accuracy:.2f}%  ({stats.seconds:.1f}s)"
            )

    result = train(
        model,
        optimizer,  # type: ignore[arg-type]
        spec.params.get("optimizer", {}),
        data,
        spec.train,
        seed=spec.seed,
        device=torch.device(spec.device),
        on_epoch=show,
    )
    saved = None
    if args.out:
        saved = save_checkpoint(
            args.out / "model.safetensors", model, metadata={"spec": spec.as_dict()}
        )
    summary = {
        "test_accuracy": result.curve[-1].test_accuracy,
        "images_per_s": result.images_per_s,
        "train_time_s": result.seconds,
        "n_params": sum(p.numel() for p in model.parameters()),
        "transform_report": report,
        "curve": result.curve_dicts(),
        "checkpoint": str(saved) if saved else None,
        "spec": spec.as_dict(),
    }
    if args.json:
        print_json(summary)
    else:
        console.print(
            f"test accuracy {summary['test_accuracy']:.2f}%  ({result.images_per_s:.0f} images/s, "
            f"{summary['n_params']:,} parameters)" + (f"; saved {saved}" if saved else "")
        )
    return 0
