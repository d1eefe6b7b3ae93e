"""Synthetic, learnable images for tests and smoke runs: each class is a noisy colour pattern."""

from __future__ import annotations

from typing import Any

import torch

from snt_search.specs import DataBundle, DataRequest, Dataset


class Synthetic(Dataset):
    """Generated class-conditional noisy patterns (learnable in a few steps); for tests."""

    defaults = {
        "num_classes": 4,
        "train_size": 256,
        "test_size": 128,
        "image_size": 32,
        "noise": 40.0,
    }

    def load(self, request: DataRequest, **params: Any) -> DataBundle:
        p = self.resolve_params(params)
        k, size = int(p["num_classes"]), int(p["image_size"])
        g = torch.Generator().manual_seed(
            1234
        )  # the data set itself never changes with the trial seed
        prototypes = torch.rand(k, 3, size, size, generator=g) * 255

        def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.arange(n) % k
            noise = torch.randn(n, 3, size, size, generator=g) * float(p["noise"])
            x = (prototypes[y] + noise).round().clamp(0, 255).to(torch.uint8)
            return x, y.long()

        train_x, train_y = make(int(p["train_size"]))
        test_x, test_y = make(int(p["test_size"]))
        classes = tuple(f"class{i}" for i in range(k))
        return DataBundle(train_x, train_y, test_x, test_y, classes, (0.5,) * 3, (0.25,) * 3)
