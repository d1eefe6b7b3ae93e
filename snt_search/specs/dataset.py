"""Dataset plugins: turn a source of labelled images into in-memory uint8 tensors.

Contract: ``Dataset.load(request, **params)`` returns a :class:`DataBundle` whose images are
``uint8`` tensors shaped ``[N, C, H, W]`` with square ``H == W`` and integer labels in
``[0, num_classes)``. The training loop normalises with ``mean``/``std`` (in 0..1 units) and
augments on tensors, so a dataset never ships a transform pipeline. A dataset that cannot reach
its data raises :class:`DataUnavailable` saying what to do (download, ``--data-dir``, another
dataset), never a bare network error.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .base import Plugin, PluginError

if TYPE_CHECKING:  # torch is imported by the plugins, not by the contract
    import torch

__all__ = ["DataBundle", "DataRequest", "DataUnavailable", "Dataset"]


class DataUnavailable(PluginError):
    """The data set is not on disk and cannot be fetched; the message says how to fix it."""


@dataclass(frozen=True)
class DataRequest:
    """Where a dataset should look for its files and whether it may download them."""

    data_dir: Path | None = None
    download: bool = True
    seed: int = 0


@dataclass(frozen=True)
class DataBundle:
    """A whole data set held in memory: uint8 images ``[N, C, H, W]`` and int64 labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool = True  # a mirror image keeps its label (False: digits, text); used by augment

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    def validate(self, name: str) -> DataBundle:
        """Check the contract above; raise naming the dataset and the broken field."""
        import torch

        for split, x, y in (
            ("train", self.train_x, self.train_y),
            ("test", self.test_x, self.test_y),
        ):
            if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != x.shape[-2]:
                raise PluginError(
                    f"dataset {name!r}: {split}_x must be uint8 [N, C, H, W] with H == W, "
                    f"got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise PluginError(
                    f"dataset {name!r}: {split}_y must be int64 [N] matching {split}_x, "
                    f"got {y.dtype} {tuple(y.shape)}"
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise PluginError(
                    f"dataset {name!r}: {split} labels must lie in [0, {self.num_classes}), "
                    f"got [{int(y.min())}, {int(y.max())}]"
                )
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise PluginError(f"dataset {name!r}: train and test images differ in shape")
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise PluginError(f"dataset {name!r}: mean/std need one value per channel")
        return self

    def subset(self, train: int | None, test: int | None, seed: int = 0) -> DataBundle:
        """A seeded random subset (the same seed always gives the same images)."""
        import torch

        g = torch.Generator().manual_seed(seed)

        def pick(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[Any, Any]:
            if n is None or n >= len(y):
                return x, y
            idx = torch.randperm(len(y), generator=g)[:n]
            return x[idx], y[idx]

        train_x, train_y = pick(self.train_x, self.train_y, train)
        test_x, test_y = pick(self.test_x, self.test_y, test)
        return replace(self, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


class Dataset(Plugin):
    """Base class of dataset plugins (entry-point group ``snt_search.datasets``)."""

    kind: ClassVar[str] = "dataset"

    @abstractmethod
    def load(self, request: DataRequest, **params: Any) -> DataBundle:
        """Load the whole data set into memory; see the module docstring for the contract."""
