"""Numeric precision and memory layout of the training step: what ``auto`` means.

``train.precision``:
    ``"bf16"`` runs the forward pass under ``torch.autocast(dtype=torch.bfloat16)`` (the loss,
    the weights, the optimizer state and the gradients stay float32); ``"fp32"`` does not;
    ``"auto"`` (the default) is ``bf16`` where the hardware computes bfloat16 natively
    (CUDA devices that support it, and CPUs with AVX512-BF16 or AMX, or Arm's BF16
    extension) and ``fp32`` elsewhere, where bf16 would be emulated and slower. On CPU,
    ``auto`` runs depthwise convolutions in float32 outside autocast
    (:func:`depthwise_fp32`): oneDNN runs those slower in bf16, and the rest of the model
    (the pointwise convolutions of a MobileNet) faster.
``train.memory_format``:
    ``"channels_last"`` stores the weights and inputs of models with 2-D convolutions as
    NHWC, which oneDNN (CPU) and cuDNN (GPU) run faster; ``"contiguous"`` keeps NCHW;
    ``"auto"`` (the default) is ``channels_last`` for models with a ``Conv2d``.

Measured on a 2-core AMD EPYC with AVX512-BF16, one training step (forward, backward, Adam,
batch 128 of 32x32 images), fp32 NCHW -> channels_last -> + bf16 autocast: ResNet-20 185 ->
138 -> 87 ms, ResNet-18 1706 -> 1279 -> 659 ms, MobileNet-V1 421 -> 249 -> 309 ms (slower:
its depthwise convolutions), Mixer-S 432 -> 150 ms (bf16 alone). On a 2-core Intel Xeon with
AMX, MobileNet-V1 channels_last: fp32 423 ms, bf16 510 ms, bf16 with the depthwise
convolutions in fp32 335 ms. The estimate of lambda_max and all evaluation stay in float32
whatever the training precision.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .config import MEMORY_FORMATS, PRECISIONS

__all__ = [
    "MEMORY_FORMATS",
    "PRECISIONS",
    "autocast_dtype",
    "depthwise_fp32",
    "fp32_depthwise",
    "native_bf16",
    "use_channels_last",
]


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """CPU feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 matrix products in hardware."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    flags = _cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """``torch.bfloat16`` when ``precision`` (see the module docstring) means bf16 on
    ``device``, else None."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"train.precision must be one of {PRECISIONS}, got {precision!r}; 'auto' picks "
            f"bf16 where the hardware has it"
        )
    if precision == "fp32":
        return None
    if precision == "auto" and not native_bf16(device):
        return None
    return torch.bfloat16


def fp32_depthwise(precision: str, device: torch.device | str, model: nn.Module) -> bool:
    """Whether training ``model`` should run its depthwise convolutions under
    :func:`depthwise_fp32`: ``auto`` precision that means bf16, on CPU."""
    return (
        precision == "auto"
        and torch.device(device).type == "cpu"
        and autocast_dtype(precision, device) is not None
        and any(map(_is_depthwise, model.modules()))
    )


@contextmanager
def depthwise_fp32(model: nn.Module) -> Iterator[None]:
    """Within the block, ``model``'s depthwise ``Conv2d`` layers compute in float32 with
    autocast off (their output is float32; the next autocast op casts it as it needs)."""
    convs = [m for m in model.modules() if _is_depthwise(m)]
    for conv in convs:  # an instance attribute shadows the class's forward
        conv.forward = functools.partial(_in_fp32, type(conv).forward.__get__(conv))
    try:
        yield
    finally:
        for conv in convs:
            conv.__dict__.pop("forward", None)


def _in_fp32(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.autocast(x.device.type, enabled=False):
        return forward(x.float())


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels


def use_channels_last(model: nn.Module, memory_format: str) -> bool:
    """Whether to run ``model`` channels_last under ``memory_format`` (see the docstring)."""
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(
            f"train.memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}"
        )
    if memory_format == "contiguous":
        return False
    return any(isinstance(m, nn.Conv2d) for m in model.modules())
