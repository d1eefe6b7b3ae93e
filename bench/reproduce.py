"""A measured reproduction of the paper's comparisons at a budget a CPU can afford.

Trains each configuration of the paper's comparison with several seeds through the same trial
pipeline a study uses (train -> lambda_max -> compress -> evaluate, plus a one-shot magnitude
pruning sweep), and writes one JSON file per run and a Markdown summary with mean ± std:

- ADAM vs SAM vs ARCH (= ``snt`` + adam): lambda_max and the accuracy drop under W4 PTQ (Table 3);
- the Table 4 ablation: baseline (``none``), +Preact (``preact``), +PReLU/LBias (``snt``);
- accuracy vs one-shot sparsity in 10% steps (Fig. 5).

Runs already on disk are skipped, so an interrupted reproduction resumes.

    python bench/reproduce.py --data-dir ../shared/datasets/cifar10-subset --epochs 10 \\
        --seeds 0 1 --out runs/repro-resnet20
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from snt_search.config import Budget, SharpnessConfig, SweepConfig, TrainConfig
from snt_search.pipeline import run_trial
from snt_search.trial_spec import TrialSpec

# label -> (transform, optimizer)
CONFIGS = {
    "ADAM": ("none", "adam"),
    "SAM": ("none", "sam"),
    "+Preact": ("preact", "adam"),
    "ARCH (snt)": ("snt", "adam"),
}


def spec_for(args: argparse.Namespace, transform: str, optimizer: str, seed: int) -> TrialSpec:
    dataset = "imagefolder" if args.data_dir else "digits"
    return TrialSpec(
        plugins={
            "dataset": dataset,
            "backbone": args.backbone,
            "transform": transform,
            "optimizer": optimizer,
            "compressor": "ptq",
        },
        params={
            "compressor": {"weight_bits": args.weight_bits, "finetune_epochs": 1},
            "optimizer": {"rho": args.rho} if optimizer == "sam" else {},
        },
        train=TrainConfig(
            epochs=args.epochs,
            batch_size=128,
            lr=args.lr,
            weight_decay=5e-4,
            warmup_epochs=1.0 if args.epochs > 2 else 0.0,
        ),
        sharpness=SharpnessConfig(
            method="lanczos", samples=args.sharpness_samples, batch_size=128, max_iter=30, tol=1e-3
        ),
        budget=Budget(
            name="repro", epochs=args.epochs, train_subset=args.train_subset, test_subset=None
        ),
        sweep=SweepConfig("magnitude_prune"),
        seed=seed,
        data_dir=args.data_dir,
        download=False,
    )


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        for label, (transform, optimizer) in CONFIGS.items():
            path = args.out / f"{transform}-{optimizer}-seed{seed}.json"
            if not path.exists() and args.summary_only:
                continue
            if not path.exists():
                start = time.perf_counter()
                result = run_trial(spec_for(args, transform, optimizer, seed))
                record = {
                    "label": label,
                    "transform": transform,
                    "optimizer": optimizer,
                    "seed": seed,
                    "metrics": result.metrics,
                    "curve": result.curve,
                    "reports": result.reports,
                    "wall_s": time.perf_counter() - start,
                }
                path.write_text(json.dumps(record, indent=2, default=str))
                print(
                    f"{label:>11} seed {seed}: {json.dumps({k: round(v, 3) for k, v in result.metrics.items()})}",
                    flush=True,
                )
            rows.append(json.loads(path.read_text()))
    return rows


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def summary(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"backbone {args.backbone}, {args.epochs} epochs, seeds {sorted({r['seed'] for r in rows})}, "
        f"data {args.data_dir or 'digits'}, "
        f"W{args.weight_bits} PTQ + 1 epoch fine-tuning, lambda_max on {args.sharpness_samples} training images",
        "",
        "| approach | seeds | λ_max | base acc. (%) | W4 PTQ acc. (%) | PTQ drop (pp) | prune 50% acc. | prune 80% acc. | sweep mean acc. | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label in CONFIGS:
        runs = [r for r in rows if r["label"] == label]
        if not runs:
            continue
        m = [r["metrics"] for r in runs]
        curves = [r["reports"]["sweep"] for r in runs]

        def at(curve: dict[str, Any], target: float) -> float:
            i = min(
                range(len(curve["sparsities"])), key=lambda j: abs(curve["sparsities"][j] - target)
            )
            return float(curve["accuracies"][i])

        lines.append(
            f"| {label} | {len(runs)} | {mean_std([x['lambda_max'] for x in m])} | {mean_std([x['base_accuracy'] for x in m])} | "
            f"{mean_std([x['compressed_accuracy'] for x in m])} | {mean_std([x['accuracy_drop'] for x in m])} | "
            f"{mean_std([at(c, 0.5) for c in curves])} | {mean_std([at(c, 0.8) for c in curves])} | "
            f"{mean_std([c['mean_accuracy'] for c in curves])} | {mean_std([x['train_time_s'] for x in m])} |"
        )
    lines += ["", "Accuracy (%) vs one-shot magnitude sparsity (mean over seeds):", ""]
    sparsities = rows[0]["reports"]["sweep"]["sparsities"]
    lines.append("| approach | " + " | ".join(f"{s:.1f}" for s in sparsities) + " |")
    lines.append("| --- |" + " --- |" * len(sparsities))
    for label in CONFIGS:
        curves = [r["reports"]["sweep"]["accuracies"] for r in rows if r["label"] == label]
        if curves:
            means = [statistics.mean(c[i] for c in curves) for i in range(len(sparsities))]
            lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in means) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, help="ImageFolder with train/ and test/ (default: digits)"
    )
    parser.add_argument("--backbone", default="resnet20")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--rho", type=float, default=0.05)
    parser.add_argument("--weight-bits", type=int, default=4)
    parser.add_argument("--train-subset", type=int)
    parser.add_argument("--sharpness-samples", type=int, default=512)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("runs/repro"))
    parser.add_argument(
        "--summary-only", action="store_true", help="summarise the runs on disk; train nothing"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run_all(args)
    text = summary(rows, args)
    (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
