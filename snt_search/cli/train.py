"""`snt-search train`: train one model (no search) and report its accuracy and throughput.

With ``--compressor NAME`` it then compresses a copy as a trial does
(:func:`snt_search.pipeline.compress_copy`) and reports base and compressed accuracy and the
compressor's report; ``--out DIR`` then writes ``DIR/trained`` and ``DIR/compressed`` as
export folders (:func:`snt_search.export.folder.export_model`, ``docs/export.md``).
Without a compressor ``--out DIR`` writes the training checkpoint ``DIR/model.safetensors``.
"""

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
      --optimizer sgd --set train.lr=0.1 --set optimizer.sgd.momentum=0.9 --out runs/r20
  snt-search train --dataset digits --backbone resnet20 --compressor ptq \
      --set compressor.ptq.weight_bits=4 --out runs/r20-ptq4   # runs/r20-ptq4/{trained,compressed}"""


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
    p.add_argument(
        "--compressor",
        help="compress a copy after training, as a trial does (default: no compression)",
    )
    p.add_argument("--epochs", type=int, default=1, help="epochs (default: 1)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="base learning rate (default: 1e-3)")
    p.add_argument("--train-subset", type=int, help="use a seeded subset of the training images")
    p.add_argument("--test-subset", type=int, help="use a seeded subset of the test images")
    p.add_argument("--data-dir", type=Path, help="where the dataset finds its files")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of init, data order and augmentation")
    p.add_argument(
        "--out",
        type=Path,
        help="folder for model.safetensors, or with --compressor for the export folders "
        "trained/ and compressed/ (default: do not save)",
    )
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

    kinds = ("dataset", "backbone", "transform", "optimizer", "compressor")
    plugins = {k: getattr(args, k) for k in kinds if getattr(args, k, None)}
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
    if args.out and "compressor" in spec.plugins:  # refuse an existing folder before training
        from ..export.folder import check_out

        for which in ("trained", "compressed"):
            check_out(args.out / which)
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
        optimizer,
        spec.params.get("optimizer", {}),
        data,
        spec.train,
        seed=spec.seed,
        device=torch.device(spec.device),
        on_epoch=show,
    )
    summary: dict[str, Any] = {
        "test_accuracy": result.curve[-1].test_accuracy,
        "images_per_s": result.images_per_s,
        "train_time_s": result.seconds,
        "n_params": sum(p.numel() for p in model.parameters()),
        "transform_report": report,
        "curve": result.curve_dicts(),
        "checkpoint": None,
        "spec": spec.as_dict(),
    }
    if "compressor" in spec.plugins:
        summary |= _compress(spec, model, data, args.out)
    elif args.out:
        saved = save_checkpoint(
            args.out / "model.safetensors", model, metadata={"spec": spec.as_dict()}
        )
        summary["checkpoint"] = str(saved)
    if args.json:
        print_json(summary)
        return 0
    console.print(
        f"test accuracy {summary['test_accuracy']:.2f}%  ({result.images_per_s:.0f} images/s, "
        f"{summary['n_params']:,} parameters)"
        + (f"; saved {summary['checkpoint']}" if summary["checkpoint"] else "")
    )
    if "compression" in summary:
        c = summary["compression"]
        console.print(
            f"{spec.plugins['compressor']}: base accuracy {c['base_accuracy']:.2f}%  "
            f"compressed {c['compressed_accuracy']:.2f}%  drop {c['accuracy_drop']:.2f} pp"
        )
        console.print("report: " + ", ".join(f"{k} {v}" for k, v in c["report"].items()))
        for which, folder in summary["exported"].items():
            console.print(f"saved {which} model: {folder}")
    return 0


def _compress(spec: TrialSpec, model: Any, data: Any, out: Path | None) -> dict[str, Any]:
    """Compress a copy of the trained ``model`` as a trial does; with ``out`` export both.

    Returns ``{"compression": {base/compressed accuracy, drop, report}, "exported": {which:
    folder}}``; an existing ``out/trained`` or ``out/compressed`` is refused before any write.
    """
    import torch

    from ..data import TensorLoader
    from ..export import ModelConfig, dataset_info
    from ..export.folder import check_out, export_model
    from ..pipeline import compress_copy
    from ..training import evaluate

    if out is not None:
        for which in ("trained", "compressed"):
            check_out(out / which)
    loader = TensorLoader.from_bundle(
        data, "test", batch_size=spec.train.eval_batch_size, device=torch.device(spec.device)
    )
    base = evaluate(model, loader)
    compressed, report, _ = compress_copy(spec, model, data)
    after = evaluate(compressed, loader)
    metrics = {"base_accuracy": base, "compressed_accuracy": after, "accuracy_drop": base - after}
    exported: dict[str, str] = {}
    if out is not None:
        info = {k: v for k, v in spec.as_dict().items() if k not in ("plugins", "params")}
        trial = {"metrics": metrics, "reports": {"compression": report.as_dict()}, **info}
        trial.pop("data_dir", None)
        for which, module in (("trained", model), ("compressed", compressed)):
            config = ModelConfig(
                which=which,
                plugins=dict(spec.plugins),
                params={k: dict(v) for k, v in spec.params.items()},
                dataset=dataset_info(data),
                trial=trial,
            )
            exported[which] = export_model(module, config, out / which)["out"]
    return {
        "compression": {**metrics, "report": dict(report.metrics)},
        "exported": exported,
    }
