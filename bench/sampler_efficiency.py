"""Sampler efficiency and early stopping, on a cheap real space (digits, tiny Mixer).

1. Hypervolume after N trials for NSGA-II and TPE against random search, several seeds,
   all measured against one reference point (the worst value of each objective over every
   run, pushed out by 10% of its range), so the numbers compare across samplers.
2. Early stopping: the same random-search trials (same seed: the same configurations) with
   and without ``[early_stop]``, 3 epochs each: the compute spent (sum of trial durations)
   and the final front's hypervolume (again against one reference point).

    python bench/sampler_efficiency.py                       # defaults below
    python bench/sampler_efficiency.py --trials 30 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch

from snt_search import hypervolume
from snt_search.driver import StudyOptions, run_study
from snt_search.registry import get_registry
from snt_search.space import load_space

SPACE = """
[study]
name = "{name}"
sampler = "{sampler}"
seed = {seed}

[objectives]
lambda_max = "minimize"
accuracy_drop = "minimize"

[plugins]
dataset = "digits"
backbone = "mixer_s"
transform = ["none", "snt"]
optimizer = ["adam", "sam"]
compressor = "magnitude_prune"

[params]
"backbone.mixer_s.num_blocks" = 1
"backbone.mixer_s.embed_dim" = 32
"backbone.mixer_s.patch_size" = 8
"train.lr" = {{ low = 1e-4, high = 3e-2, log = true }}
"train.warmup_epochs" = 0.0
"optimizer.sam.rho" = {{ low = 0.01, high = 0.3, log = true }}
"compressor.magnitude_prune.sparsity" = 0.6

[sharpness]
method = "lanczos"
samples = 64
batch_size = 64
max_iter = 10

[budgets.smoke]
epochs = {epochs}
batch_size = 32
train_subset = 512
test_subset = 256
{early_stop}
"""


def run(folder: Path, sampler: str, seed: int, trials: int, epochs: int, early: str) -> dict:
    name = f"{sampler}-{seed}-e{epochs}-{'es' if early else 'full'}"
    path = folder / f"{name}.toml"
    path.write_text(
        SPACE.format(name=name, sampler=sampler, seed=seed, epochs=epochs, early_stop=early)
    )
    url = f"sqlite:///{folder / name}.db"
    options = StudyOptions(n_trials=trials, storage=url, show_progress=False, out_dir=folder / name)
    start = time.perf_counter()
    run_study(load_space(path), options)
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name=name, storage=url)
    durations = [t.duration.total_seconds() for t in study.trials if t.duration is not None]
    return {
        "trials": study.trials,
        "directions": study.directions,
        "wall_s": wall,
        "trial_s": sum(durations),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
    }


def hv_at(result: dict, n: int, ref: np.ndarray) -> float:
    first = [t for t in result["trials"] if t.number < n]
    points = [p for _, p in hypervolume.minimized(first, result["directions"])]
    front = [p for p in points if not any(np.all(q <= p) and np.any(q < p) for q in points)]
    return hypervolume.hypervolume(front, ref)


def common_reference(results: list[dict]) -> np.ndarray:
    points = [p for r in results for _, p in hypervolume.minimized(r["trials"], r["directions"])]
    ref = hypervolume.reference_point(points)
    assert ref is not None, "no trial finished"
    return ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samplers", nargs="+", default=["random", "nsga2", "tpe"])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per trial in part 1")
    parser.add_argument("--es-trials", type=int, default=20)
    parser.add_argument("--es-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--es-floor", type=float, default=15.0, help="min_accuracy at epoch 1")
    parser.add_argument(
        "--es-front-fraction", type=float, default=0.5, help="front_fraction at epoch 1"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: robust on a shared machine)"
    )
    parser.add_argument("--skip-samplers", action="store_true")
    parser.add_argument("--skip-early-stop", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(args.threads)
    get_registry()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.skip_samplers:
            results = {
                (s, seed): run(folder, s, seed, args.trials, args.epochs, "")
                for s in args.samplers
                for seed in args.seeds
            }
            ref = common_reference(list(results.values()))
            print(f"part 1: {args.trials} trials per run, seeds {args.seeds}, reference {ref}")
            base = statistics.mean(
                hv_at(results["random", s], args.trials, ref) for s in args.seeds
            )
            for sampler in args.samplers:
                final = [hv_at(results[sampler, s], args.trials, ref) for s in args.seeds]
                half = [hv_at(results[sampler, s], args.trials // 2, ref) for s in args.seeds]
                print(
                    f"  {sampler:7s} HV@{args.trials // 2} {statistics.mean(half):.4g}  "
                    f"HV@{args.trials} {statistics.mean(final):.4g} "
                    f"(per seed {', '.join(f'{v:.4g}' for v in final)})  "
                    f"vs random {statistics.mean(final) / base:.2f}x"
                )
        if not args.skip_early_stop:
            early = (
                f"\n[early_stop]\nat_epoch = 1\nmin_accuracy = {args.es_floor}\n"
                f"front_fraction = {args.es_front_fraction}\n"
            )
            pairs = [
                (
                    run(folder, "random", seed, args.es_trials, 3, ""),
                    run(folder, "random", seed, args.es_trials, 3, early),
                )
                for seed in args.es_seeds
            ]
            ref = common_reference([r for pair in pairs for r in pair])
            print(
                f"part 2: random search, {args.es_trials} trials x 3 epochs, early stop below "
                f"{args.es_floor}% or {args.es_front_fraction} x the front's at epoch 1, "
                f"reference {ref}"
            )
            for seed, (full, stopped) in zip(args.es_seeds, pairs, strict=True):
                hv_full = hv_at(full, args.es_trials, ref)
                hv_es = hv_at(stopped, args.es_trials, ref)
                print(
                    f"  seed {seed}: compute {full['trial_s']:.0f} s -> {stopped['trial_s']:.0f} s "
                    f"({1 - stopped['trial_s'] / full['trial_s']:.0%} saved, "
                    f"{stopped['pruned']} trials stopped); HV {hv_full:.4g} -> {hv_es:.4g}"
                )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
