"""Per-trial overhead of the Ray driver against the local driver, side by side in one run.

Both drivers run the same cheap space (synthetic data, a one-block Mixer, 1 epoch) one trial
at a time with one torch thread: the local driver in this process, the Ray driver on a Ray
started here with 1 CPU (so Ray also runs one trial at a time). The time per trial is the
median gap between consecutive trial completions in the Optuna storage, leaving out the first
trial, so fixed costs drop out and a busy machine's hiccups barely count; the Ray-minus-local
difference is the Ray driver's overhead per trial (Tune's loop, a report and a checkpoint per
epoch, the searcher's ask/tell). Fixed costs are printed apart: ``ray.init``, and how much
longer than its trials a Ray study takes (starting a worker, importing torch and the plugins
in it, Tune's setup).

    python bench/ray_overhead.py [--trials 12] [--epochs 1]

Ray binds to the machine's network interface; on a shared machine run it in a loopback-only
namespace (see docs/benchmarks.md for the exact command used).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

from snt_search.driver import StudyOptions, run_study
from snt_search.ray import RayOptions, run_study_ray
from snt_search.registry import get_registry
from snt_search.space import Space, load_space

SPACE = """
[study]
name = "bench"
sampler = "random"
seed = 0

[objectives]
lambda_max = "minimize"
accuracy_drop = "minimize"

[plugins]
dataset = "synthetic"
backbone = "mixer_s"
transform = ["none", "snt"]
optimizer = "adam"
compressor = "magnitude_prune"

[params]
"dataset.synthetic.train_size" = 96
"dataset.synthetic.test_size" = 64
"backbone.mixer_s.num_blocks" = 1
"backbone.mixer_s.embed_dim" = 16
"backbone.mixer_s.patch_size" = 8
"train.lr" = { low = 1e-3, high = 1e-2, log = true }
"compressor.magnitude_prune.sparsity" = 0.5

[sharpness]
method = "lanczos"
samples = 32
batch_size = 32
max_iter = 10

[budgets.smoke]
epochs = {epochs}
batch_size = 32
"""


def timed_study(space: Space, n: int, folder: Path, *, ray: bool) -> tuple[float, float]:
    """A fresh study of ``n`` trials: (seconds in all, median seconds per trial after the first)."""
    name = "ray" if ray else "local"
    options = StudyOptions(
        n_trials=n,
        storage=f"sqlite:///{folder / 'bench.db'}",
        study_name=name,
        out_dir=folder / name,
        show_progress=False,
    )
    start = time.perf_counter()
    if ray:
        outcome = run_study_ray(space, options, RayOptions(storage_path=str(folder / "ray")))
    else:
        outcome = run_study(space, options)
    seconds = time.perf_counter() - start
    assert outcome.ran == n == outcome.finished, (name, outcome)
    study = optuna.load_study(study_name=name, storage=options.storage)
    ends = sorted(t.datetime_complete for t in study.trials if t.datetime_complete)
    gaps = [(b - a).total_seconds() for a, b in zip(ends, ends[1:], strict=False)]
    return seconds, statistics.median(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    n = args.trials
    torch.set_num_threads(1)
    logging.getLogger("snt_search").setLevel(logging.ERROR)

    import ray

    with tempfile.TemporaryDirectory(prefix="ray-overhead-") as tmp:
        folder = Path(tmp)
        (folder / "bench.toml").write_text(SPACE.replace("{epochs}", str(args.epochs)))
        space = load_space(folder / "bench.toml")
        space.check(get_registry())  # plugin imports: not part of either driver's figures
        local_s, local_trial = timed_study(space, n, folder, ray=False)
        start = time.perf_counter()
        ray.init(num_cpus=1, num_gpus=0, include_dashboard=False, logging_level=logging.ERROR)
        init_s = time.perf_counter() - start
        try:
            ray_s, ray_trial = timed_study(space, n, folder, ray=True)
        finally:
            ray.shutdown()

    print(f"{n} trials per study, {args.epochs} epoch(s) each, one at a time")
    print(f"{'driver':8} {'study':>8} {'per trial':>10} {'fixed':>8}")
    for label, total, per in (("local", local_s, local_trial), ("ray", ray_s, ray_trial)):
        print(f"{label:8} {total:7.1f}s {per:9.3f}s {total - n * per:7.1f}s")
    print(
        f"ray overhead per trial: {ray_trial - local_trial:+.3f}s ({ray_trial / local_trial:.2f}x)"
    )
    print(
        f"ray fixed cost per study: {(ray_s - n * ray_trial) - (local_s - n * local_trial):+.1f}s"
    )
    print(f"ray.init (local, 1 CPU): {init_s:.1f}s")


if __name__ == "__main__":
    main()
