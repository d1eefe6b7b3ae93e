"""One configuration over several seeds: a trial's metrics as means, with their spread.

A space's ``[study] seeds = N`` makes every trial run its configuration N times, with seeds
``spec.seed``, ``spec.seed + 1``, ... (data order, initialisation, lambda_max's sample and
start vector), and score it by the mean of each metric: a configuration is then not chosen
for one lucky seed. The paper's comparisons are averages over runs too.

What a repeated trial returns (:func:`combine`): ``metrics`` the mean over seeds; the report
``seeds`` with each seed's metrics and the standard deviation of each metric across seeds (the
trial's user attribute ``seeds_report``); the curve, the other reports and the models of the
first seed (so the exported model is one real trained model, not an average); a sharpness
estimate that any seed could not trust keeps the trial off the front, the reason naming the
seed. A seed that fails fails the trial.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import TrialResult
    from .trial_spec import TrialSpec

__all__ = ["combine", "run_seeds", "seed_checkpoint"]


def seed_checkpoint(checkpoint: Path | None, index: int) -> Path | None:
    """The per-epoch checkpoint of the ``index``-th seed: the trial's own for the first."""
    if checkpoint is None or index == 0:
        return checkpoint
    return checkpoint.with_name(f"{checkpoint.stem}.seed{index}{checkpoint.suffix}")


def run_seeds(
    spec: TrialSpec,
    run_once: Callable[..., TrialResult],
    *,
    on_epoch: Callable[[Any], None] | None = None,
    checkpoint: Path | None = None,
    **kwargs: Any,
) -> TrialResult:
    """Run ``spec`` once per seed with ``run_once`` and :func:`combine` the results.

    Only the first seed reports its epochs to ``on_epoch`` (progress and early stopping see
    one training run); each seed checkpoints to its own file, so a killed trial resumes every
    seed where it was. The extra seeds' files are removed once the trial has its result.
    """
    seeds = [spec.seed + i for i in range(spec.seeds)]
    results = []
    for i, seed in enumerate(seeds):
        one = replace(spec, seed=seed, seeds=1)
        results.append(
            run_once(
                one,
                on_epoch=on_epoch if i == 0 else None,
                checkpoint=seed_checkpoint(checkpoint, i),
                **kwargs,
            )
        )
    for i in range(1, len(seeds)):
        path = seed_checkpoint(checkpoint, i)
        if path is not None:
            path.unlink(missing_ok=True)
    return combine(results, seeds)


def combine(results: Sequence[TrialResult], seeds: Sequence[int]) -> TrialResult:
    """The results of one configuration under ``seeds`` as one (see the module docstring)."""
    first = results[0]
    names = list(first.metrics)
    per_seed = [dict(r.metrics) for r in results]
    means = {m: statistics.fmean(r[m] for r in per_seed) for m in names}
    spread = {m: statistics.stdev(r[m] for r in per_seed) if len(seeds) > 1 else 0.0 for m in names}
    reports = dict(first.reports)
    untrusted = [
        f"seed {seed}: {reason}"
        for seed, r in zip(seeds, results, strict=True)
        if (reason := r.reports.get("sharpness", {}).get("off_front_reason"))
    ]
    if "sharpness" in reports:
        reports["sharpness"] = {**reports["sharpness"], "off_front_reason": "; ".join(untrusted)}
    reports["seeds"] = {"seeds": list(seeds), "metrics": per_seed, "std": spread}
    return replace(first, metrics=means, reports=reports)
