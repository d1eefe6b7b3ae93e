"""One trial, start to finish: data -> build -> transform -> train -> lambda_max -> compress -> score.

Stages only read their inputs and return results; none reaches back into the driver. The
trained model is never compressed in place: the compressor gets a deep copy, so base and
compressed accuracy are measured on the same weights. Everything a trial measured is returned
in :class:`TrialResult` (metrics, per-epoch curve, plugin reports), ready to be stored; a
model with non-finite outputs or a non-finite metric fails the trial instead
(:class:`TrialFailed`, naming the stage and its plugins). A negative or unconverged lambda_max
is a result kept off the front: the sharpness report's ``off_front_reason`` says why.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .compression import sweep
from .data import TensorLoader, normalize
from .export.config import dataset_info
from .measure import measure_model
from .registry import Registry, get_registry
from .repeats import run_seeds
from .sharpness import SharpnessResult, draw_batches, estimate_lambda_max, off_front_reason
from .specs import (
    Backbone,
    CompressionContext,
    CompressionReport,
    Compressor,
    DataBundle,
    DataRequest,
    Dataset,
    Optimizer,
    Transform,
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


class TrialFailed(RuntimeError):
    """A trial could not produce a trustworthy result; the message is stored as its reason."""


@dataclass
class TrialResult:
    """What a trial measured; ``models`` holds its ``"trained"`` and ``"compressed"`` modules
    and ``dataset`` the input they expect (:func:`snt_search.export.dataset_info`), for
    saving them (``docs/export.md``)."""

    metrics: dict[str, float]
    curve: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, Any] = field(default_factory=dict)
    models: dict[str, nn.Module] = field(default_factory=dict, repr=False)
    dataset: dict[str, Any] = field(default_factory=dict)


_DATA_CACHE: dict[tuple[Any, ...], DataBundle] = {}


def load_data(spec: TrialSpec, registry: Registry | None = None) -> DataBundle:
    """The spec's dataset with its budget's subsets applied (cached per process)."""
    registry = registry or get_registry()
    name = spec.plugins["dataset"]
    params = spec.params.get("dataset", {})
    key = (name, tuple(sorted(params.items())), str(spec.data_dir))
    if key not in _DATA_CACHE:
        dataset = registry.get("dataset", name)
        assert isinstance(dataset, Dataset)
        request = DataRequest(data_dir=spec.data_dir, download=spec.download, seed=spec.seed)
        _DATA_CACHE[key] = dataset.load(request, **params).validate(name)
    budget = spec.budget
    return _DATA_CACHE[key].subset(budget.train_subset, budget.test_subset, seed=spec.seed)


def build_model(
    spec: TrialSpec, data: DataBundle, registry: Registry | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Backbone built and transformed, seeded by the spec; returns the transform's report."""
    registry = registry or get_registry()
    backbone = registry.get("backbone", spec.plugins["backbone"])
    transform = registry.get("transform", spec.plugins["transform"])
    assert isinstance(backbone, Backbone) and isinstance(transform, Transform)
    torch.manual_seed(spec.seed)
    model = backbone.build(
        num_classes=data.num_classes,
        image_size=data.image_size,
        in_chans=data.in_chans,
        **spec.params.get("backbone", {}),
    )
    report = transform.apply(model, **spec.params.get("transform", {}))
    return model, report.as_dict()


def lambda_max_of(spec: TrialSpec, model: nn.Module, data: DataBundle) -> SharpnessResult:
    """``model``'s lambda_max as a trial measures it: ``spec.sharpness`` on that many
    training images (no augmentation) drawn with ``spec.seed``."""
    sh = spec.sharpness
    device = torch.device(spec.device)
    x_s, y_s = _normalized_sample(data, sh.samples, seed=spec.seed, device=device)
    batches = draw_batches(x_s, y_s, samples=len(y_s), batch_size=sh.batch_size, seed=spec.seed)
    return estimate_lambda_max(
        model, batches, method=sh.method, max_iter=sh.max_iter, tol=sh.tol, seed=spec.seed
    )


def compress_copy(
    spec: TrialSpec, model: nn.Module, data: DataBundle, *, registry: Registry | None = None
) -> tuple[nn.Module, CompressionReport, CompressionContext]:
    """Compress a deep copy of the trained ``model`` as a trial does; ``model`` is untouched.

    The compressor is ``spec.plugins["compressor"]`` with its ``spec.params``; it calibrates
    on 512 training images drawn with seed ``spec.seed + 2`` and fine-tunes (when it does)
    as ``spec.finetune`` says. Returns the copy, its report and the context used.
    """
    registry = registry or get_registry()
    device = torch.device(spec.device)
    compressor = registry.get("compressor", spec.plugins["compressor"])
    assert isinstance(compressor, Compressor)
    compressed = copy.deepcopy(model)
    x_c, y_c = _normalized_sample(data, 512, seed=spec.seed + 2, device=device)
    calibration = draw_batches(x_c, y_c, samples=len(y_c), batch_size=128, seed=spec.seed + 2)
    plugins = _names(spec, "compressor")
    context = CompressionContext(
        calibration=calibration,
        finetune=_finetuner(spec, registry, data, device, plugins, "compress"),
        device=device,
        seed=spec.seed,
    )
    report = compressor.compress(compressed, context, **spec.params.get("compressor", {}))
    return compressed, report, context


def run_trial(
    spec: TrialSpec,
    *,
    registry: Registry | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    checkpoint: Path | None = None,
) -> TrialResult:
    """Run one trial; raise :class:`TrialFailed` with the reason when it cannot be scored.

    A trial is scored only when every model it evaluates gives finite outputs and every
    metric it returns is finite; otherwise the reason names what was not finite, the stage
    (``training``, ``sharpness``, ``compress``, ``sweep``) and the plugins that stage used.
    With ``checkpoint`` (a ``.safetensors`` path), training saves there after each epoch and a
    re-run of the same trial (after its worker was killed) continues from the last epoch.
    With ``spec.seeds > 1`` the configuration runs once per seed and the metrics are the
    means (:mod:`snt_search.repeats`).
    """
    if spec.seeds > 1:  # [study] seeds: the mean over seeds (snt_search.repeats)
        return run_seeds(
            spec, run_trial, registry=registry, on_epoch=on_epoch, checkpoint=checkpoint
        )
    registry = registry or get_registry()
    device = torch.device(spec.device)
    data = load_data(spec, registry)
    model, transform_report = build_model(spec, data, registry)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = registry.get("optimizer", spec.plugins["optimizer"])
    assert isinstance(optimizer, Optimizer)
    stages = {  # who made what each stage measured, for the failure reasons
        "training": _names(spec, "backbone", "transform", "optimizer"),
        "sharpness": _names(spec, "backbone", "transform", "optimizer"),
        "compress": _names(spec, "compressor"),
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
    start = time.perf_counter()
    sharp = lambda_max_of(spec, model, data)
    sharpness_s = time.perf_counter() - start
    if not math.isfinite(sharp.lambda_max):
        raise TrialFailed(
            f"lambda_max is {sharp.lambda_max}, the loss or its Hessian is not finite: "
            f"{stages['sharpness']} (stage: sharpness)"
        )

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
        pruner = registry.get("compressor", spec.sweep.compressor)
        assert isinstance(pruner, Compressor)
        finetune = _finetuner(spec, registry, data, device, stages["sweep"], "sweep")
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


def _names(spec: TrialSpec, *kinds: str) -> str:
    """``"backbone 'mixer_s', transform 'snt'"``: the spec's plugins of ``kinds``."""
    return ", ".join(f"{kind} {spec.plugins[kind]!r}" for kind in kinds)


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


def _finetuner(
    spec: TrialSpec,
    registry: Registry,
    data: DataBundle,
    device: torch.device,
    plugins: str,
    stage: str,
) -> Callable[[nn.Module, int], None]:
    """The ``finetune(model, epochs)`` a compressor gets, as ``spec.finetune`` says
    (:class:`~snt_search.config.FinetuneConfig`: one optimizer and schedule for every arm)."""
    ft = spec.finetune
    own = ft.optimizer == "trial"
    name = spec.plugins["optimizer"] if own else ft.optimizer
    optimizer = registry.get("optimizer", name)
    assert isinstance(optimizer, Optimizer)
    params = spec.params.get("optimizer", {}) if own else {}

    def finetune(m: nn.Module, epochs: int) -> None:
        cfg = replace(
            spec.train,
            epochs=epochs,
            lr=spec.train.lr * ft.lr_scale,
            warmup_epochs=ft.warmup_epochs,
            schedule=ft.schedule,
        )
        try:
            train(m, optimizer, params, data, cfg, seed=spec.seed + 1, device=device)
        except Diverged as exc:
            raise TrialFailed(
                f"diverged while fine-tuning the compressed model: {plugins}, optimizer "
                f"{name!r} (stage: {stage}): {exc}"
            ) from exc

    return finetune


def _normalized_sample(
    data: DataBundle, n: int, *, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` training images (seeded, no augmentation), normalised as the model saw them."""
    idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))[:n]
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return normalize(data.train_x[idx], mean, std).to(device), data.train_y[idx].to(device)
