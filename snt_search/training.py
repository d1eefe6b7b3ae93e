"""The training loop every trial runs: fast on tensors, deterministic on CPU, honest on failure.

``train`` steps any optimizer plugin (one pass, or SAM's two passes with BatchNorm statistics
frozen in the second), applies linear warm-up then cosine decay per step (the paper's
schedule), evaluates after each epoch and reports an :class:`EpochStats` to ``on_epoch``. A NaN
or infinite loss, or non-finite outputs on the test set after an epoch, stop training with
:class:`Diverged`: a diverged run is a failed trial, never a result. The clock
(``TrainResult.seconds``: ``train_time_s``) starts after one-time set-up such as building the
C++ Eq. 1 kernels (up to ~20 s on a cold cache).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .allocator import reuse_freed_memory
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import TensorLoader
from .layers import LBiasPReLU, eq1_op
from .precision import autocast_dtype, depthwise_fp32, fp32_depthwise, use_channels_last
from .specs import DataBundle, Optimizer

__all__ = [
    "Diverged",
    "EpochStats",
    "TrainResult",
    "decay_groups",
    "evaluate",
    "frozen_bn_stats",
    "train",
]


class Diverged(RuntimeError):
    """The training loss, or the model's outputs on the test set, became NaN or infinite."""


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float


@dataclass
class TrainResult:
    """``seconds``: wall-clock time of the training epochs (batches, forward, backward, steps),
    resumed ones included; not the set-up before the first step (model, optimizer, native
    kernels) nor the evaluation after each epoch. ``images``: images trained on in that time.
    """

    curve: list[EpochStats] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def curve_dicts(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.curve]


@contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    """Run with BatchNorm running statistics left unchanged (momentum 0), e.g. SAM's 2nd pass."""
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.momentum))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum


@torch.inference_mode()
def evaluate(model: nn.Module, loader: TensorLoader) -> float:
    """Top-1 accuracy in percent, or NaN when any logit is NaN or infinite.

    A model with non-finite outputs has no accuracy (``argmax`` of a NaN row is an arbitrary
    class), so callers must treat NaN as a failure. The model's train/eval mode is restored
    afterwards.
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    finite: torch.Tensor | None = None  # all logits so far finite; read once at the end
    channels_last = model_is_channels_last(model)
    try:
        for x, y in loader:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits = model(x)
            ok = torch.isfinite(logits).all()
            finite = ok if finite is None else finite & ok
            correct += int((logits.argmax(dim=1) == y).sum())
            total += len(y)
    finally:
        model.train(was_training)
    if finite is not None and not bool(finite):
        return math.nan
    return 100.0 * correct / max(total, 1)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base learning rate at ``step`` (linear warm-up, then the schedule).

    ``cosine`` decays to 0 (the paper's schedule), ``step`` divides by 10 at 50% and 75% of
    training, ``constant`` keeps the base rate.
    """
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return 0.1 ** sum(progress >= m for m in (0.5, 0.75))
    raise ValueError(f"train.schedule must be 'cosine', 'step' or 'constant', got {schedule!r}")


def train(
    model: nn.Module,
    optimizer: Optimizer,
    optimizer_params: dict[str, Any],
    data: DataBundle,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[EpochStats], None] | None = None,
    checkpoint: Path | None = None,
) -> TrainResult:
    """Train ``model`` in place with the optimizer plugin; see the module docstring.

    With ``checkpoint``, the model and optimizer are saved there after every epoch, and a
    run that finds a checkpoint of an earlier, interrupted run continues after its last epoch
    (data order is seeded per epoch, so the result is the same as an uninterrupted run).
    ``cfg.precision`` and ``cfg.memory_format`` pick bf16 autocast and channels_last (both
    ``auto`` by default: see :mod:`snt_search.precision`); the model leaves in the default
    (contiguous) layout whatever it trained in, as compressors and ``torch.nn.utils``
    expect. Host memory freed by one step is kept for the next
    (:func:`snt_search.allocator.reuse_freed_memory`).
    """
    reuse_freed_memory()
    fp32_dw = fp32_depthwise(cfg.precision, device, model)
    try:
        with depthwise_fp32(model) if fp32_dw else contextlib.nullcontext():
            return _train(
                model, optimizer, optimizer_params, data, cfg, seed, device, on_epoch, checkpoint
            )
    finally:
        if model_is_channels_last(model):
            model.to(memory_format=torch.contiguous_format)


def _train(
    model: nn.Module,
    optimizer: Optimizer,
    optimizer_params: dict[str, Any],
    data: DataBundle,
    cfg: TrainConfig,
    seed: int,
    device: torch.device | str,
    on_epoch: Callable[[EpochStats], None] | None,
    checkpoint: Path | None,
) -> TrainResult:
    device = torch.device(device)
    model.to(device)
    _build_native_kernels(model, device)  # once per process, before any step is timed
    amp = autocast_dtype(cfg.precision, device)
    channels_last = use_channels_last(model, cfg.memory_format)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    torch.manual_seed(seed)
    opt = optimizer.build(
        decay_groups(model, cfg.weight_decay, cfg.weight_decay_scope),
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        **optimizer_params,
    )
    base_lrs = [g["lr"] for g in opt.param_groups]
    loader = TensorLoader.from_bundle(
        data,
        "train",
        batch_size=cfg.batch_size,
        shuffle=True,
        augment=cfg.augment,
        drop_last=len(data.train_y) > cfg.batch_size,
        seed=seed,
        device=device,
    )
    test_loader = TensorLoader.from_bundle(
        data, "test", batch_size=cfg.eval_batch_size, device=device
    )
    total_steps = cfg.epochs * len(loader)
    warmup = int(cfg.warmup_epochs * len(loader))

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            logits = model(x)
        return F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing), logits

    result = TrainResult()
    first_epoch = 0
    if checkpoint is not None and checkpoint.is_file():
        meta = load_checkpoint(checkpoint, model, optimizer=opt, map_location=device)
        first_epoch = int(meta["epoch"])
        result.curve = [EpochStats(**e) for e in meta["curve"]]
        result.seconds, result.images = float(meta["seconds"]), int(meta["images"])
    step = first_epoch * len(loader)
    for epoch in range(first_epoch, cfg.epochs):
        model.train()
        loader.set_epoch(epoch)
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for x, y in loader:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            factor = lr_factor(step, total_steps, warmup, cfg.schedule)
            for group, base_lr in zip(opt.param_groups, base_lrs, strict=True):
                group["lr"] = base_lr * factor
            opt.zero_grad(set_to_none=True)
            loss, logits = loss_of(x, y)
            if not torch.isfinite(loss):
                raise Diverged(
                    f"training loss became {float(loss.detach())} at epoch {epoch + 1}, step {step + 1} "
                    f"(lr {cfg.lr:g}); lower train.lr or narrow its range in the space"
                )
            loss.backward()
            if optimizer.two_pass:

                def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                    with frozen_bn_stats(model):
                        second, _ = loss_of(x, y)
                        second.backward()
                    return second

                opt.step(closure)  # type: ignore[arg-type]  # torch's stub: float
            else:
                opt.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            step += 1
        seconds = time.perf_counter() - start
        result.seconds += seconds
        result.images += seen
        mean_loss = float(loss_sum) / max(seen, 1)
        if not math.isfinite(mean_loss):
            raise Diverged(f"training loss became {mean_loss} in epoch {epoch + 1}; lower train.lr")
        test_accuracy = evaluate(model, test_loader)
        if not math.isfinite(test_accuracy):
            raise Diverged(
                f"the model gives non-finite outputs on the test set (eval mode) after epoch "
                f"{epoch + 1}, though its training loss {mean_loss:.4g} is finite; check the "
                f"eval-mode forward of the backbone and transform, or lower train.lr "
                f"(lr {cfg.lr:g})"
            )
        stats = EpochStats(
            epoch=epoch + 1,
            loss=mean_loss,
            train_accuracy=100.0 * int(correct) / max(seen, 1),
            test_accuracy=test_accuracy,
            seconds=seconds,
        )
        result.curve.append(stats)
        if checkpoint is not None:
            meta = {
                "epoch": epoch + 1,
                "curve": result.curve_dicts(),
                "seconds": result.seconds,
                "images": result.images,
            }
            save_checkpoint(checkpoint, model, optimizer=opt, metadata=meta)
        if on_epoch is not None:
            on_epoch(stats)
    return result


def decay_groups(model: nn.Module, weight_decay: float, scope: str) -> list[dict[str, Any]]:
    """``model``'s trainable parameters as torch param groups, each with its weight decay.

    ``scope="all"``: one group, every parameter decayed. ``scope="weights"`` (the default of
    ``train.weight_decay_scope``): parameters of one dimension (biases, BatchNorm/LayerNorm
    scales and shifts, Eq. 1's per-channel gamma/beta/zeta) and those a timm model names in
    ``no_weight_decay()`` (position embeddings, class tokens) get ``weight_decay=0``: L2 on
    Eq. 1's slope beta pulls PReLU toward ReLU, and on normalisation it fights the scale the
    layer is there to learn. The grouping is timm's ``param_groups_weight_decay``.
    """
    if scope == "all":
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": params, "weight_decay": weight_decay}]
    from timm.optim import param_groups_weight_decay

    named = getattr(model, "no_weight_decay", None)
    skip = set(named()) if callable(named) else set()
    groups = param_groups_weight_decay(model, weight_decay, no_weight_decay_list=skip)
    return [g for g in groups if g["params"]]


def _build_native_kernels(model: nn.Module, device: torch.device) -> None:
    """Build (or load from the disk cache) the C++ kernels ``model``'s layers use on ``device``.

    :class:`~snt_search.layers.LBiasPReLU` builds its Eq. 1 kernels on its first CPU forward
    (once per process; seconds, or ~20 s for the operator on a cold cache); :func:`train`
    calls this before its clock starts so that build is not timed as training.
    """
    if device.type == "cpu" and any(isinstance(m, LBiasPReLU) for m in model.modules()):
        eq1_op.ops()


def model_is_channels_last(model: nn.Module) -> bool:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return conv is not None and conv.weight.is_contiguous(memory_format=torch.channels_last)
