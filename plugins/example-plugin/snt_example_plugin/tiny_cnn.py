"""A tiny residual CNN: a backbone plugin small enough to train in seconds on a CPU."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from snt_search.specs import Backbone


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.bn(self.conv(x)))


class TinyCNN(Backbone):
    """Tiny residual CNN (stem, `depth` 3x3 blocks, global pool); ~5k params at width 16."""

    defaults = {"width": 16, "depth": 2}

    def build(
        self, *, num_classes: int, image_size: int, in_chans: int, **params: Any
    ) -> nn.Module:
        p = self.resolve_params(params)
        width = p["width"]
        return nn.Sequential(
            nn.Conv2d(in_chans, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            *[_Block(width) for _ in range(p["depth"])],
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, num_classes),
        )
