"""A fixed, seeded subset of a dataset, split into batches for the sharpness estimators.

``lambda_max`` depends on the samples it is measured on; comparing two trials is only fair on
the same samples, so the subset is a pure function of ``(len(x), samples, batch_size, seed)``.
PyHessian's authors recommend a few thousand CIFAR samples (e.g. 4096) for a stable estimate.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .hvp import Batch

__all__ = ["draw_batches"]


def draw_batches(x: Tensor, y: Tensor, *, samples: int, batch_size: int, seed: int) -> list[Batch]:
    """Return ``ceil(samples / batch_size)`` batches of a seeded random subset of ``(x, y)``.

    Args:
        x: float inputs, first dimension = dataset size (normalised as the model expects).
        y: targets with the same first dimension.
        samples: subset size, ``1 <= samples <= len(x)``.
        batch_size: samples per batch (the last batch may be smaller); memory, not the
            estimate, depends on it (the estimators weight batches by size).
        seed: seed of the subset; the same seed always gives the same samples.

    The batches stay on ``x``'s device; the estimators move them to the model's device.
    """
    if not x.is_floating_point():
        raise TypeError(
            f"x must be a float tensor of normalised inputs, got dtype {x.dtype}; "
            "convert and normalise it as for training (e.g. x.float() / 255 then normalise)"
        )
    n = int(x.shape[0]) if x.dim() > 0 else 0
    if y.dim() == 0 or int(y.shape[0]) != n:
        raise ValueError(
            f"x and y must have the same first dimension, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not 1 <= samples <= n:
        raise ValueError(
            f"samples must be in [1, len(x)={n}], got {samples}; lower samples or pass more data"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:samples]
    idx = idx.to(x.device)
    return [(x[chunk], y[chunk.to(y.device)]) for chunk in torch.split(idx, batch_size)]
