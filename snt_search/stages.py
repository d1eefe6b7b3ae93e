"""The stages of a trial around training: its data, its model, lambda_max, compression.

:mod:`snt_search.pipeline` runs them in order (:func:`~snt_search.pipeline.run_trial`);
each is usable alone, as ``snt-search train --compressor`` and ``bench/reproduce.py`` do. A
stage that cannot give a trustworthy result raises :class:`TrialFailed` with the reason.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .data import normalize
from .registry import Registry, get_registry
from .sharpness import SharpnessResult, draw_batches, estimate_lambda_max
from .specs import (
    CompressionContext,
    CompressionReport,
    DataBundle,
    DataRequest,
)
from .training import Diverged, train
from .trial_spec import TrialSpec

__all__ = [
    "TrialFailed",
    "TrialResult",
    "build_model",
    "compress_copy",
    "finetuner",
    "lambda_max_of",
    "load_data",
    "plugin_names",
]

CALIBRATION_IMAGES = 512  # training images a compressor calibrates on (seed: spec.seed + 2)


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
    on :data:`CALIBRATION_IMAGES` training images drawn with seed ``spec.seed + 2`` and fine-tunes (when it does)
    as ``spec.finetune`` says. Returns the copy, its report and the context used.
    """
    registry = registry or get_registry()
    device = torch.device(spec.device)
    compressor = registry.get("compressor", spec.plugins["compressor"])
    compressed = copy.deepcopy(model)
    x_c, y_c = _normalized_sample(data, CALIBRATION_IMAGES, seed=spec.seed + 2, device=device)
    calibration = draw_batches(x_c, y_c, samples=len(y_c), batch_size=128, seed=spec.seed + 2)
    plugins = plugin_names(spec, "compressor")
    context = CompressionContext(
        calibration=calibration,
        finetune=finetuner(spec, registry, data, device, plugins, "compress"),
        device=device,
        seed=spec.seed,
    )
    report = compressor.compress(compressed, context, **spec.params.get("compressor", {}))
    return compressed, report, context


def plugin_names(spec: TrialSpec, *kinds: str) -> str:
    """``"backbone 'mixer_s', transform 'snt'"``: the spec's plugins of ``kinds``."""
    return ", ".join(f"{kind} {spec.plugins[kind]!r}" for kind in kinds)


def finetuner(
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
