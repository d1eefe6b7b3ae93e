"""Helpers shared by the built-in datasets: PIL/numpy images to the uint8 [N, C, H, W] contract."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def stack_hwc(images: Iterable[np.ndarray]) -> torch.Tensor:
    """Stack HxWxC uint8 arrays into one contiguous uint8 tensor [N, C, H, W]."""
    array = np.stack(list(images))
    if array.ndim == 3:
        array = array[..., None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2))).contiguous()


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, in 0..1 units (std floored to avoid 0)."""
    f = x.float().div_(255)
    mean = f.mean(dim=(0, 2, 3))
    std = f.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)
