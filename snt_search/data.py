"""Batches straight from in-memory uint8 tensors, augmented on the whole batch at once.

Instead of a DataLoader decoding and transforming one PIL image at a time, a whole data set
lives as one uint8 tensor on the training device; each batch is gathered, cast, augmented
(random crop with zero padding, horizontal flip; the standard CIFAR recipe) and normalised as
tensor operations, as airbench does. The order is drawn from a seeded generator, so the same
seed gives the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .specs import DataBundle

__all__ = ["TensorLoader", "augment", "normalize"]

Batch = tuple[torch.Tensor, torch.Tensor]


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float, scaled to 0..1 and standardised per channel."""
    return (x.float().div_(255.0) - mean) / std


def augment(
    x: torch.Tensor, generator: torch.Generator, pad: int = 4, *, hflip: bool = True
) -> torch.Tensor:
    """Random crop after ``pad`` pixels of zero padding, then (``hflip``) random horizontal flip.

    Batched. ``hflip=False`` for data whose label a mirror image changes (digits, text)."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    if not hflip:
        return out
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)[:, None, None, None]
    return torch.where(flip, out.flip(3), out)


class TensorLoader:
    """Iterates normalised float batches ``(x, y)`` from uint8 tensors held on ``device``."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        hflip: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(mean, device=self.device).view(shape)
        self.std = torch.tensor(std, device=self.device).view(shape)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.hflip = hflip
        self.drop_last = drop_last
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def set_epoch(self, epoch: int) -> None:
        """Seed this epoch's order and augmentation from (seed, epoch): resumed runs repeat it."""
        self.generator.manual_seed(self.seed * 100_003 + epoch)

    @classmethod
    def from_bundle(cls, data: DataBundle, split: str, **kwargs: object) -> TensorLoader:
        x, y = (data.train_x, data.train_y) if split == "train" else (data.test_x, data.test_y)
        kwargs.setdefault("hflip", data.hflip)
        return cls(x, y, mean=data.mean, std=data.std, **kwargs)  # type: ignore[arg-type]

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            xb = self.x[idx]
            if self.augment:
                xb = augment(xb, self.generator, hflip=self.hflip)
            yield normalize(xb, self.mean, self.std), self.y[idx]
