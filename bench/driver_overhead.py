"""Driver overhead and worker scaling, measured side by side in one run.

1. Per-trial overhead of the driver + storage: ``run_study`` with a no-op trial (no training),
   against plain ``study.optimize`` with a no-op objective on the same kind of storage, so
   the ratio shows what snt-search adds (sampling a spec, storing config/metrics/curve, the
   front and hypervolume history after every trial, heartbeats). Target: < 0.5 s per trial.
2. Throughput of 2 workers vs 1 on the same short space (real tiny trials on synthetic data):
   finished trials per minute, (a) over the whole wall clock, start-up included, and (b) in
   steady state: ``(n - w) / (t_n - t_w)`` from the completion times of the trials in the
   storage, leaving out each of the ``w`` workers' first trial (which carries the worker's
   start-up: process start, storage connection, loading the Eq. 1 kernels, ~3-4 s).
   Target: >= 1.7x on 2 cores. Only meaningful on an idle machine: the load average before
   and after is printed with the figures.

    python bench/driver_overhead.py                      # both parts, SQLite
    python bench/driver_overhead.py --storage journal    # the journal file instead
    python bench/driver_overhead.py --skip-scaling --overhead-trials 100
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for pickling noop_runner by name

from snt_search.driver import StudyOptions, run_study  # noqa: E402
from snt_search.pipeline import TrialResult  # noqa: E402
from snt_search.registry import get_registry  # noqa: E402
from snt_search.space import load_space  # noqa: E402
from snt_search.storage import open_storage  # noqa: E402
from snt_search.trial_spec import TrialSpec  # noqa: E402

SPACE = """
[study]
name = "bench"
sampler = "{sampler}"
seed = 0

[objectives]
lambda_max = "minimize"
accuracy_drop = "minimize"

[plugins]
dataset = "synthetic"
backbone = "mixer_s"
transform = {transform}
optimizer = {optimizer}
compressor = "magnitude_prune"

[params]
"dataset.synthetic.train_size" = {train_size}
"dataset.synthetic.test_size" = 128
"backbone.mixer_s.num_blocks" = 2
"backbone.mixer_s.embed_dim" = 32
"backbone.mixer_s.patch_size" = 8
"train.lr" = {{ low = 1e-3, high = 1e-2, log = true }}
{rho}"compressor.magnitude_prune.sparsity" = 0.5

[sharpness]
method = "lanczos"
samples = 64
batch_size = 64
max_iter = 10

[budgets.smoke]
epochs = {epochs}
batch_size = 32
"""


CHOICES = {
    "transform": '["none", "snt"]',
    "optimizer": '["adam", "sam"]',
    "rho": '"optimizer.sam.rho" = { low = 0.01, high = 0.1 }\n',
}


def noop_runner(spec: TrialSpec, **_: Any) -> TrialResult:
    """No training: objectives from the sampled learning rate, one curve point."""
    lr = spec.train.lr
    return TrialResult(
        metrics={"lambda_max": lr, "accuracy_drop": 1 / lr, "base_accuracy": 50.0},
        curve=[{"epoch": 1, "loss": 1.0, "test_accuracy": 50.0}],
        reports={"sharpness": {"method": "none"}},
    )


def _url(kind: str, folder: Path, tag: str) -> str:
    return f"sqlite:///{folder / tag}.db" if kind == "sqlite" else f"journal:{folder / tag}.log"


def overhead(kind: str, n: int, folder: Path) -> dict[str, float]:
    path = folder / "noop.toml"
    path.write_text(SPACE.format(sampler="nsga2", train_size=128, epochs=1, **CHOICES))
    space = load_space(path)
    url = _url(kind, folder, "overhead")
    get_registry()  # plugin imports are paid once per process, not per trial
    start = time.perf_counter()
    run_study(space, StudyOptions(n_trials=n, storage=url, show_progress=False), runner=noop_runner)
    ours = (time.perf_counter() - start) / n

    plain = optuna.create_study(
        storage=open_storage(_url(kind, folder, "plain")),
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(seed=0, population_size=8),
    )

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        lr = trial.suggest_float("train.lr", 1e-3, 1e-2, log=True)
        trial.suggest_categorical("transform", ["none", "snt"])
        return lr, 1 / lr

    start = time.perf_counter()
    plain.optimize(objective, n_trials=n)
    bare = (time.perf_counter() - start) / n
    return {"snt_search_s": ours, "plain_optuna_s": bare}


def scaling(kind: str, n: int, folder: Path, train_size: int) -> dict[str, float]:
    path = folder / "short.toml"
    # Fixed plugins, only continuous parameters sampled: every trial does the same work, so
    # runs with different worker counts (whose samplers draw different values) compare.
    fixed = {"transform": '"snt"', "optimizer": '"adam"', "rho": ""}
    path.write_text(SPACE.format(sampler="random", train_size=train_size, epochs=2, **fixed))
    space = load_space(path)
    out = {}
    # Start the worker fork server once (imports torch, timm, snt-search) before timing, as a
    # long study pays it once; its cost is reported on its own.
    start = time.perf_counter()
    warm = StudyOptions(n_trials=2, storage=_url(kind, folder, "warm"), show_progress=False)
    run_study(space, replace(warm, workers=2, out_dir=folder / "warm"), runner=noop_runner)
    out["worker_startup_s"] = time.perf_counter() - start
    # Four real trials (both transforms) in this process first, untimed: the 1-worker runs below (which run in
    # this process) then pay no first-trial costs (loading the Eq. 1 kernels, first
    # touch of the data), while every 2-worker run pays them in both of its fresh workers,
    # so the ratio is conservative.
    warm = StudyOptions(n_trials=4, storage=_url(kind, folder, "warm1"), show_progress=False)
    run_study(space, replace(warm, workers=1, out_dir=folder / "warm1"))
    default_threads = torch.get_num_threads()
    # 1 worker with all cores' threads (what --workers 1 does), 1 worker with one thread (the
    # per-process share of 2 workers on 2 cores), then 2 workers (threads_per_worker each).
    for tag, workers, threads in (("1", 1, default_threads), ("1x1", 1, 1), ("2", 2, 0)):
        options = StudyOptions(
            n_trials=n,
            storage=_url(kind, folder, f"scaling{tag}"),
            show_progress=False,
            out_dir=folder / f"runs{tag}",
        )
        if threads:
            torch.set_num_threads(threads)
        start = time.perf_counter()
        outcome = run_study(space, replace(options, workers=workers))
        seconds = time.perf_counter() - start
        torch.set_num_threads(default_threads)
        assert outcome.ran == n, outcome
        out[f"{tag}_worker_trials_per_min"] = 60 * n / seconds
        out[f"{tag}_worker_steady_per_min"] = _steady_rate(options.storage, workers)
    out["threads"] = default_threads
    out["speedup"] = out["2_worker_trials_per_min"] / out["1_worker_trials_per_min"]
    out["steady_speedup"] = out["2_worker_steady_per_min"] / out["1_worker_steady_per_min"]
    return out


def _steady_rate(storage: str, workers: int) -> float:
    """Trials per minute between the ``workers``-th and the last completion."""
    study = optuna.load_study(study_name="bench", storage=storage)
    done = sorted(t.datetime_complete for t in study.trials if t.datetime_complete)
    span = (done[-1] - done[workers - 1]).total_seconds()
    return 60 * (len(done) - workers) / span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", choices=("sqlite", "journal"), default="sqlite")
    parser.add_argument("--overhead-trials", type=int, default=50)
    parser.add_argument("--scaling-trials", type=int, default=16)
    parser.add_argument("--train-size", type=int, default=4096, help="synthetic images per trial")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        o = overhead(args.storage, args.overhead_trials, folder)
        print(
            f"per-trial overhead ({args.storage}, {args.overhead_trials} no-op trials): "
            f"snt-search {o['snt_search_s']:.3f} s, plain Optuna {o['plain_optuna_s']:.3f} s "
            f"(target < 0.5 s: {'met' if o['snt_search_s'] < 0.5 else 'MISSED'})"
        )
        if not args.skip_scaling:
            s = scaling(args.storage, args.scaling_trials, folder, args.train_size)
            print(
                f"throughput ({args.scaling_trials} trials): 1 worker "
                f"{s['1_worker_trials_per_min']:.2f}/min ({s['threads']:.0f} threads; with 1 "
                f"thread {s['1x1_worker_trials_per_min']:.2f}/min), 2 workers "
                f"{s['2_worker_trials_per_min']:.2f}/min, speedup {s['speedup']:.2f}x "
                f"(target >= 1.7x: {'met' if s['speedup'] >= 1.7 else 'MISSED'}); "
                f"starting the worker fork server took {s['worker_startup_s']:.1f} s once"
            )
            print(
                f"steady state (each worker's first trial left out): 1 worker "
                f"{s['1_worker_steady_per_min']:.2f}/min (with 1 thread "
                f"{s['1x1_worker_steady_per_min']:.2f}/min), 2 workers "
                f"{s['2_worker_steady_per_min']:.2f}/min, speedup {s['steady_speedup']:.2f}x "
                f"(target >= 1.7x: {'met' if s['steady_speedup'] >= 1.7 else 'MISSED'})"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
