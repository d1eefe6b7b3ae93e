"""Your own images in torchvision's ``ImageFolder`` layout: ``train/<class>/*`` and ``test/<class>/*``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from snt_search.specs import DataBundle, DataRequest, Dataset, DataUnavailable

from ._convert import channel_stats, stack_hwc


class ImageFolderDataset(Dataset):
    """Images from --data-dir with train/ and test/ class folders (torchvision ImageFolder)."""

    defaults = {"image_size": 32, "hflip": True}  # hflip: does a mirror image keep its label?

    def load(self, request: DataRequest, **params: Any) -> DataBundle:
        p = self.resolve_params(params)
        from PIL import Image
        from torchvision.datasets import ImageFolder

        if request.data_dir is None:
            raise DataUnavailable(
                "dataset 'imagefolder' needs --data-dir pointing at a folder holding "
                "train/<class>/*.png and test/<class>/*.png"
            )
        root = Path(request.data_dir)
        splits = {}
        for split in ("train", "test"):
            if not (root / split).is_dir():
                raise DataUnavailable(
                    f"dataset 'imagefolder': {root / split} is not a folder; the layout is "
                    f"{root}/train/<class>/*.png and {root}/test/<class>/*.png"
                )
            splits[split] = ImageFolder(str(root / split))
        train, test = splits["train"], splits["test"]
        if train.classes != test.classes:
            raise DataUnavailable(
                f"dataset 'imagefolder': train/ and test/ must hold the same class folders, "
                f"got {train.classes} and {test.classes}"
            )
        size = int(p["image_size"])

        def read(folder: ImageFolder) -> tuple[torch.Tensor, torch.Tensor]:
            images = []
            for path, _ in folder.samples:
                with Image.open(path) as image:
                    rgb = image.convert("RGB")
                if rgb.size != (size, size):
                    rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
                images.append(np.asarray(rgb, dtype=np.uint8))
            labels = torch.tensor([t for _, t in folder.samples], dtype=torch.int64)
            return stack_hwc(images), labels

        train_x, train_y = read(train)
        test_x, test_y = read(test)
        mean, std = channel_stats(train_x)
        return DataBundle(
            train_x,
            train_y,
            test_x,
            test_y,
            tuple(train.classes),
            mean,
            std,
            hflip=bool(p["hflip"]),
        )
