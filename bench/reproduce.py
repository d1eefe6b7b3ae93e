"""The paper's comparison on converged models, with seeds: train, then measure, then summarise.

Arms (paper Tables 3-4, Fig. 5): ADAM (``none`` + adam), SAM (``none`` + sam), +Preact
(``preact`` + adam) and ARCH (``snt`` + adam). Three stages, each resumable and each keeping
its output, so a later run adds seeds or arms without redoing what is on disk:

``train``    trains each arm x seed through the trial pipeline's ``build_model`` and ``train``
             (checkpoint after every epoch: a killed run continues) and writes
             ``OUT/train/ARM-seedS.json`` (config, per-epoch curve) and the trained weights
             ``OUT/models/ARM-seedS.safetensors`` (weights are never committed);
``measure``  loads each trained model and measures it with the protocol of
             ``docs/reproduction.md`` (bench/reproduce_measure.py): ``OUT/measure/*.json``;
``summary``  reads every JSON and writes ``OUT/summary.md``: per arm mean with a 95%
             confidence interval, pruning curves, Spearman's rho between lambda_max and the
             drops with its interval (bench/reproduce_summary.py).

    python bench/reproduce.py train --data-dir ../shared/datasets/cifar10-subset \\
        --epochs 60 --seeds 0 1 2 --arms ADAM SAM --threads 1 --out bench/results/repro-resnet20
    python bench/reproduce.py measure --data-dir ../shared/datasets/cifar10-subset \\
        --out bench/results/repro-resnet20
    python bench/reproduce.py summary --out bench/results/repro-resnet20

Two ``train`` processes with disjoint ``--arms`` (one thread each) use two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from snt_search.config import Budget, SharpnessConfig, TrainConfig
from snt_search.pipeline import build_model, load_data
from snt_search.registry import get_registry
from snt_search.training import train
from snt_search.trial_spec import TrialSpec

# label -> (transform, optimizer); file names use the label's slug
ARMS = {
    "ADAM": ("none", "adam"),
    "SAM": ("none", "sam"),
    "+Preact": ("preact", "adam"),
    "ARCH": ("snt", "adam"),
}


def slug(arm: str, seed: int) -> str:
    return f"{arm.strip('+').lower()}-seed{seed}"


def spec_for(config: dict[str, Any], arm: str, seed: int) -> TrialSpec:
    """The trial spec of ``arm`` with ``seed`` under the run's ``config`` (train.json)."""
    transform, optimizer = ARMS[arm]
    return TrialSpec(
        plugins={
            "dataset": "imagefolder",
            "backbone": config["backbone"],
            "transform": transform,
            "optimizer": optimizer,
            "compressor": "ptq",
        },
        params={"optimizer": {"rho": config["rho"]} if optimizer == "sam" else {}},
        train=TrainConfig(**config["train"]),
        sharpness=SharpnessConfig(),
        budget=Budget(name="repro", epochs=config["train"]["epochs"]),
        seed=seed,
        data_dir=Path(config["data_dir"]),
        download=False,
    )


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """What every ``train`` run of this output folder shares (checked on a later run)."""
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=128,
        lr=args.lr,
        weight_decay=5e-4,
        weight_decay_scope="weights",
        warmup_epochs=2.0,
        schedule="cosine",
        augment=args.augment,
        precision="fp32",
    )
    return {
        "backbone": args.backbone,
        "rho": args.rho,
        "data_dir": str(args.data_dir),
        "train": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
    }


def stamp() -> dict[str, Any]:
    """When and where a run was made (date, CPU or GPU, threads, torch)."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s), {gpu}",
        "torch": torch.__version__,
    }


def train_all(args: argparse.Namespace) -> None:
    config = run_config(args)
    (args.out / "train").mkdir(parents=True, exist_ok=True)
    (args.out / "models").mkdir(parents=True, exist_ok=True)
    shared = args.out / "config.json"
    if shared.exists():
        stored = json.loads(shared.read_text())
        stored["data_dir"] = config["data_dir"]  # the data may live elsewhere on a later run
        if stored != config:
            raise SystemExit(
                f"{shared} holds another training config than these arguments:\n"
                f"  stored: {stored}\n  asked:  {config}\n"
                "Use another --out for another protocol, or the stored arguments to add runs."
            )
    else:
        shared.write_text(json.dumps(config, indent=2) + "\n")
    registry = get_registry()
    for seed in args.seeds:
        for arm in args.arms:
            name = slug(arm, seed)
            out = args.out / "train" / f"{name}.json"
            if out.exists():
                continue
            spec = spec_for(config, arm, seed)
            data = load_data(spec, registry)
            model, _ = build_model(spec, data, registry)
            partial = args.out / "models" / f"{name}.partial.safetensors"
            start = time.perf_counter()
            result = train(
                model,
                registry.get("optimizer", spec.plugins["optimizer"]),
                spec.params.get("optimizer", {}),
                data,
                spec.train,
                seed=seed,
                checkpoint=partial,
                on_epoch=lambda e, n=name: print(
                    f"{n} epoch {e.epoch}: loss {e.loss:.3f} train {e.train_accuracy:.1f}% "
                    f"test {e.test_accuracy:.1f}% ({e.seconds:.0f} s)",
                    flush=True,
                ),
            )
            partial.replace(args.out / "models" / f"{name}.safetensors")
            record = {
                "arm": arm,
                "transform": spec.plugins["transform"],
                "optimizer": spec.plugins["optimizer"],
                "seed": seed,
                "curve": result.curve_dicts(),
                "train_time_s": result.seconds,
                "images_per_s": result.images_per_s,
                "wall_s": time.perf_counter() - start,
                **stamp(),
            }
            out.write_text(json.dumps(record, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stage", choices=["train", "measure", "summary"])
    parser.add_argument("--data-dir", type=Path, help="ImageFolder with train/ and test/")
    parser.add_argument("--backbone", default="resnet20")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--rho", type=float, default=0.05, help="SAM's radius")
    parser.add_argument(
        "--augment", action="store_true", help="crop+flip (default off: converge in fewer epochs)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--sharpness-samples", type=int, default=512)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("bench/results/repro-resnet20"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.stage != "summary" and args.data_dir is None:
        parser.error(f"{args.stage} needs --data-dir (an ImageFolder with train/ and test/)")
    if args.stage == "train":
        train_all(args)
    elif args.stage == "measure":
        from reproduce_measure import measure_all

        measure_all(args)
    else:
        from reproduce_summary import write_summary

        write_summary(args.out)


if __name__ == "__main__":
    main()
