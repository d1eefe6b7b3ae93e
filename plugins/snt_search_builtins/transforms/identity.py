"""``none``: leave the model as built, the baseline row of the paper's Tables 3 and 4."""

from __future__ import annotations

from typing import Any

from torch import nn

from snt_search.specs import Transform, TransformReport

__all__ = ["Identity"]


class Identity(Transform):
    """No transformation: the baseline architecture (ADAM/SAM rows of Tables 3-4)."""

    def apply(self, model: nn.Module, **params: Any) -> TransformReport:
        self.resolve_params(params)
        return TransformReport(self.name or "none")
