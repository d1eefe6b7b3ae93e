"""SGD with momentum (optionally Nesterov), the classic CIFAR ResNet optimizer."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from snt_search.specs import Optimizer, Range
from snt_search.specs.optimizer import fused_kwargs


class SGD(Optimizer):
    """torch.optim.SGD with momentum and optional Nesterov momentum."""

    defaults = {"momentum": 0.9, "nesterov": True}
    ranges = {"momentum": Range(0.0, 1.0, high_open=True)}

    def build(
        self, params: ParamsT, *, lr: float, weight_decay: float, **hp: Any
    ) -> torch.optim.Optimizer:
        p = self.resolve_params(hp)
        nesterov = p["nesterov"] and p["momentum"] > 0
        items: list[Any] = list(params)  # parameters or param groups
        return torch.optim.SGD(
            items,
            lr=lr,
            weight_decay=weight_decay,
            momentum=p["momentum"],
            nesterov=nesterov,
            **fused_kwargs(items),
        )
