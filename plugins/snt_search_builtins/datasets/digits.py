"""scikit-learn's handwritten digits (UCI, 1,797 real 8x8 images), offline, resized to 32x32x3."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from snt_search.specs import DataBundle, DataRequest, Dataset

from ._convert import channel_stats


class Digits(Dataset):
    """Real 8x8 handwritten digits shipped with scikit-learn, upscaled to 32x32 RGB; offline."""

    defaults = {"image_size": 32, "test_fraction": 0.2}

    def load(self, request: DataRequest, **params: Any) -> DataBundle:
        p = self.resolve_params(params)
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.from_numpy(digits.images).float().unsqueeze(1)  # values 0..16
        size = int(p["image_size"])
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = (x * (255.0 / 16.0)).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)
        y = torch.from_numpy(digits.target).long()
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))  # fixed split
        n_test = int(len(y) * float(p["test_fraction"]))
        test_idx, train_idx = order[:n_test], order[n_test:]
        train_x = x[train_idx].contiguous()
        mean, std = channel_stats(train_x)
        return DataBundle(
            train_x=train_x,
            train_y=y[train_idx],
            test_x=x[test_idx].contiguous(),
            test_y=y[test_idx],
            classes=tuple(str(i) for i in range(10)),
            mean=mean,
            std=std,
            hflip=False,  # a mirrored 2, 3, 5 or 7 is no digit: crop-only augmentation
        )
