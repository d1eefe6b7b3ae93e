"""One trial, start to finish: data -> build -> transform -> train -> lambda_max -> compress -> score.

Stages only read their inputs and return results; none reaches back into the driver. The
trained model is never compressed in place: the compressor gets a deep copy, so base and
compressed accuracy are measured on the same weights. Everything a trial measured is returned
in :class:`TrialResult` (metrics, per-epoch curve, plugin reports), ready to be stored; a
model with non-finite outputs or a non-finite metric fails the trial instead
(:class:`TrialFailed`, naming the stage and its plugins). A negative or unconverged lambda_max
is a result kept off the front: the sharpness report's ``off_front_reason`` says why.

The stages themselves (data, model, lambda_max, compression with its fine-tuning) live in
:mod:`snt_search.stages` and are re-exported here; this module runs them and scores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .compression import sweep
from .data import TensorLoader
from .export.config import dataset_info
from .measure import measure_model
from .registry import Registry, get_registry
from .repeats import run_seeds
from .sharpness import off_front_reason
from .specs import CompressionReport
from .stages import (
    TrialFailed,
    TrialResult,
    build_model,
    compress_copy,
    finetuner,
    lambda_max_of,
    load_data,
    plugin_names,
)
from .training import Diverged, EpochStats, evaluate, train
from .trial_spec import TrialSpec

__all__ = [
    "TrialFailed",
    "TrialResult",
    "build_model",
    "compress_copy",
    "lambda_max_of",
    "load_data",
    "run_trial",
]


def run_trial(
    spec: TrialSpec,
    *,
    registry: Registry | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    checkpoint: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> TrialResult:
    """Run one trial; raise :class:`TrialFailed` with the reason when it cannot be scored.

    A trial is scored only when every model it evaluates gives finite outputs and every
    metric it returns is finite; otherwise the reason names what was not finite, the stage
    (``training``, ``sharpness``, ``compress``, ``sweep``) and the plugins that stage used.
    With ``checkpoint`` (a ``.safetensors`` path), training saves there after each epoch and a
    re-run of the same trial (after its worker was killed) continues from the last epoch.
    With ``spec.seeds > 1`` the configuration runs once per seed and the metrics are the
    means (:mod:`snt_search.repeats`). ``on_phase`` hears each stage after training starts
    (``lambda_max``, ``compress``, ``sweep``), for a live display.
    """
    if spec.seeds > 1:  # [study] seeds: the mean over seeds (snt_search.repeats)
        return run_seeds(
            spec,
            run_trial,
            registry=registry,
            on_epoch=on_epoch,
            checkpoint=checkpoint,
            on_phase=on_phase,
        )
    phase = on_phase or (lambda name: None)
    registry = registry or get_registry()
    device = torch.device(spec.device)
    data = load_data(spec, registry)
    model, transform_report = build_model(spec, data, registry)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = registry.get("optimizer", spec.plugins["optimizer"])
    stages = {  # who made what each stage measured, for the failure reasons
        "training": plugin_names(spec, "backbone", "transform", "optimizer"),
        "sharpness": plugin_names(spec, "backbone", "transform", "optimizer"),
        "compress": plugin_names(spec, "compressor"),
        "sweep": f"compressor {spec.sweep.compressor!r}" if spec.sweep else "",
    }
    try:
        trained = train(
            model,
            optimizer,
            spec.params.get("optimizer", {}),
            data,
            spec.train,
            seed=spec.seed,
            device=device,
            on_epoch=on_epoch,
            checkpoint=checkpoint,
        )
    except Diverged as exc:
        raise TrialFailed(f"diverged: {stages['training']} (stage: training): {exc}") from exc

    test_loader = TensorLoader.from_bundle(
        data, "test", batch_size=spec.train.eval_batch_size, device=device
    )
    base_accuracy = evaluate(model, test_loader)
    if not math.isfinite(base_accuracy):
        raise _non_finite_outputs("trained model", stages, "training")

    sh = spec.sharpness
    phase("lambda_max")
    start = time.perf_counter()
    sharp = lambda_max_of(spec, model, data)
    sharpness_s = time.perf_counter() - start
    if not math.isfinite(sharp.lambda_max):
        raise TrialFailed(
            f"lambda_max is {sharp.lambda_max}, the loss or its Hessian is not finite: "
            f"{stages['sharpness']} (stage: sharpness)"
        )

    phase("compress")
    compressed, compress_report, context = compress_copy(spec, model, data, registry=registry)
    compressed_accuracy = evaluate(compressed, test_loader)
    if not math.isfinite(compressed_accuracy):
        raise _non_finite_outputs("compressed model", stages, "compress")
    batch = next(iter(test_loader))[0][: spec.train.batch_size]
    measured = measure_model(compressed, batch, n_params) | _declared(
        registry, spec.plugins["compressor"], compress_report
    )
    reports: dict[str, Any] = {
        "transform": transform_report,
        # off_front_reason: a negative or unconverged estimate stays off the front (trust.py)
        "sharpness": {**sharp.as_dict(), "off_front_reason": off_front_reason(sharp, sh)},
        "compression": compress_report.as_dict(),
    }
    metrics: dict[str, float] = {}
    if spec.sweep is not None:
        phase("sweep")
        pruner = registry.get("compressor", spec.sweep.compressor)
        finetune = finetuner(spec, registry, data, device, stages["sweep"], "sweep")
        curve = sweep(
            model,
            pruner,
            replace(context, finetune=finetune),
            lambda m: evaluate(m, test_loader),
            spec.sweep.sparsities,
        )
        for sparsity, accuracy in zip(curve.sparsities, curve.accuracies, strict=True):
            if not math.isfinite(accuracy):
                raise _non_finite_outputs(f"model pruned to {sparsity:g}", stages, "sweep")
        reports["sweep"] = {"compressor": spec.sweep.compressor, **curve.as_dict()}
        metrics.update(
            sweep_auc=curve.auc,
            sweep_mean_accuracy=curve.mean_accuracy,
            sweep_accuracy_drop=base_accuracy - curve.mean_accuracy,
        )

    metrics |= {
        "base_accuracy": base_accuracy,
        "compressed_accuracy": compressed_accuracy,
        "accuracy_drop": base_accuracy - compressed_accuracy,
        "lambda_max": float(sharp.lambda_max),
        "train_time_s": trained.seconds,
        "images_per_s": trained.images_per_s,
        "sharpness_time_s": sharpness_s,
        "n_params": float(n_params),
        **measured,
    }
    _check_finite(metrics, stages)
    return TrialResult(
        metrics=metrics,
        curve=trained.curve_dicts(),
        reports=reports,
        models={"trained": model, "compressed": compressed},
        dataset=dataset_info(data),
    )


# The stage that measures each metric run_trial returns (others: "score").
_STAGE_OF = {
    "base_accuracy": "training",
    "train_time_s": "training",
    "images_per_s": "training",
    "n_params": "training",
    "model_bytes": "compress",
    "params": "compress",
    "param_reduction": "compress",
    "latency_ms": "compress",
    "lambda_max": "sharpness",
    "sharpness_time_s": "sharpness",
    "compressed_accuracy": "compress",
    "accuracy_drop": "compress",
    "sweep_auc": "sweep",
    "sweep_mean_accuracy": "sweep",
    "sweep_accuracy_drop": "sweep",
}


def _declared(registry: Registry, name: str, report: CompressionReport) -> dict[str, float]:
    """The report keys compressor ``name`` declares as metrics (``Compressor.metrics``)."""
    compressor = registry.get("compressor", name)
    out = {}
    for key in getattr(compressor, "metrics", {}):
        if key not in report.metrics:
            raise TrialFailed(
                f"compressor {name!r} declares the metric {key!r} but its report "
                f"has only {sorted(report.metrics)} (stage: compress); fix the plugin"
            )
        out[key] = float(report.metrics[key])
    return out


def _non_finite_outputs(model: str, stages: dict[str, str], stage: str) -> TrialFailed:
    return TrialFailed(
        f"{model} gives non-finite outputs: {stages[stage]} (stage: {stage}); a model whose "
        f"outputs are NaN or infinite has no accuracy, so the trial has no result"
    )


def _check_finite(metrics: dict[str, float], stages: dict[str, str]) -> None:
    """Raise :class:`TrialFailed` naming the first metric that is NaN or infinite."""
    for name, value in metrics.items():
        if not math.isfinite(value):
            stage = _STAGE_OF.get(name, "score")
            who = stages.get(stage) or "every plugin of the trial"
            raise TrialFailed(
                f"metric {name} is {value}, not a finite number: {who} (stage: {stage}); "
                f"a trial's metrics must all be finite to be a result"
            )
