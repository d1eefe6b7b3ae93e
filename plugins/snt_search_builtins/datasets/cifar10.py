"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) through torchvision, the paper's data sets (Sec. 5.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from snt_search.specs import DataBundle, DataRequest, Dataset, DataUnavailable

from ._convert import CIFAR_MEAN, CIFAR_STD

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


class Cifar10(Dataset):
    """CIFAR-10 via torchvision: 50k/10k 32x32 RGB images in 10 classes (downloads if allowed)."""

    folder: ClassVar[str] = "cifar-10-batches-py"
    mean: ClassVar[tuple[float, ...]] = CIFAR_MEAN
    std: ClassVar[tuple[float, ...]] = CIFAR_STD

    def _torchvision_class(self) -> Any:
        from torchvision.datasets import CIFAR10

        return CIFAR10

    def load(self, request: DataRequest, **params: Any) -> DataBundle:
        self.resolve_params(params)
        cls = self._torchvision_class()
        root = Path(request.data_dir or "data")
        try:
            train = cls(str(root), train=True, download=request.download)
            test = cls(str(root), train=False, download=request.download)
        except (
            OSError,
            RuntimeError,
        ) as exc:  # URLError is an OSError; missing files: RuntimeError
            raise DataUnavailable(
                f"dataset {self.name!r}: could not load it from {root} ({exc}). "
                f"Put the official '{self.folder}' folder under --data-dir, let it download "
                f"on a machine with internet access, or use --dataset imagefolder / digits."
            ) from exc
        return DataBundle(
            train_x=torch.from_numpy(train.data).permute(0, 3, 1, 2).contiguous(),
            train_y=torch.tensor(train.targets, dtype=torch.int64),
            test_x=torch.from_numpy(test.data).permute(0, 3, 1, 2).contiguous(),
            test_y=torch.tensor(test.targets, dtype=torch.int64),
            classes=tuple(train.classes),
            mean=self.mean,
            std=self.std,
        )


class Cifar100(Cifar10):
    """CIFAR-100 via torchvision: 50k/10k 32x32 RGB images in 100 classes (downloads if allowed)."""

    folder = "cifar-100-python"
    mean = CIFAR100_MEAN
    std = CIFAR100_STD

    def _torchvision_class(self) -> Any:
        from torchvision.datasets import CIFAR100

        return CIFAR100
