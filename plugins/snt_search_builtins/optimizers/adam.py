"""Adam (Kingma & Ba 2015): the paper's baseline optimizer ("ADAM" in Tables 2-3).

:class:`~snt_search_builtins.optimizers.adamw.AdamW` is this plugin with torch's AdamW.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch.optim.optimizer import ParamsT

from snt_search.specs import Optimizer, Range
from snt_search.specs.optimizer import fused_kwargs


class Adam(Optimizer):
    """torch.optim.Adam; the paper's baseline (ADAM)."""

    defaults = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    ranges = {
        "beta1": Range(0.0, 1.0, high_open=True),
        "beta2": Range(0.0, 1.0, high_open=True),
        "eps": Range(0.0, low_open=True),
    }
    torch_class: ClassVar[type[torch.optim.Adam] | type[torch.optim.AdamW]] = torch.optim.Adam

    def build(
        self, params: ParamsT, *, lr: float, weight_decay: float, **hp: Any
    ) -> torch.optim.Optimizer:
        p = self.resolve_params(hp)
        items: list[Any] = list(params)  # parameters or param groups
        return self.torch_class(
            items,
            lr=lr,
            weight_decay=weight_decay,
            betas=(p["beta1"], p["beta2"]),
            eps=p["eps"],
            **fused_kwargs(items),
        )
