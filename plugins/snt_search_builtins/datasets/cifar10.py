"""CIFAR-10 (Krizhevsky 2009) through torchvision, the paper's main data set (Sec. 5.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from snt_search.specs import DataBundle, DataRequest, Dataset, DataUnavailable

from ._convert import CIFAR_MEAN, CIFAR_STD


class Cifar10(Dataset):
    """CIFAR-10 via torchvision: 50k/10k 32x32 RGB images in 10 classes (downloads if allowed)."""

    def load(self, request: DataRequest, **params: Any) -> DataBundle:
        self.resolve_params(params)
        from torchvision.datasets import CIFAR10

        root = Path(request.data_dir or "data")
        try:
            train = CIFAR10(str(root), train=True, download=request.download)
            test = CIFAR10(str(root), train=False, download=request.download)
        except (
            OSError,
            RuntimeError,
        ) as exc:  # URLError is an OSError; missing files: RuntimeError
            raise DataUnavailable(
                f"dataset 'cifar10': could not load CIFAR-10 from {root} ({exc}). "
                f"Put the official 'cifar-10-batches-py' folder under --data-dir, let it download "
                f"on a machine with internet access, or use --dataset imagefolder / digits."
            ) from exc
        return DataBundle(
            train_x=torch.from_numpy(train.data).permute(0, 3, 1, 2).contiguous(),
            train_y=torch.tensor(train.targets, dtype=torch.int64),
            test_x=torch.from_numpy(test.data).permute(0, 3, 1, 2).contiguous(),
            test_y=torch.tensor(test.targets, dtype=torch.int64),
            classes=tuple(train.classes),
            mean=CIFAR_MEAN,
            std=CIFAR_STD,
        )
