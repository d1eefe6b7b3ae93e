"""Random unstructured pruning: the baseline any magnitude criterion should beat."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snt_search.specs import CompressionContext, CompressionReport, Compressor, PluginError


class RandomPrune(Compressor):
    """Zero a random `sparsity` fraction of each Linear/Conv weight (seeded); a baseline."""

    defaults = {"sparsity": 0.5}

    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        p = self.resolve_params(params)
        if not 0.0 <= p["sparsity"] < 1.0:  # a PluginError fails the trial with this message
            raise PluginError(
                f"compressor {self.name!r}: sparsity must be in [0, 1), got {p['sparsity']}; "
                f"set compressor.{self.name}.sparsity to e.g. 0.5"
            )
        g = torch.Generator().manual_seed(context.seed)
        zeros = total = 0
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear | nn.Conv2d):
                    keep = torch.rand(m.weight.shape, generator=g) >= p["sparsity"]
                    m.weight.mul_(keep.to(m.weight))
                    zeros += int((m.weight == 0).sum())
                    total += m.weight.numel()
        return CompressionReport(self.name, {"sparsity": zeros / max(total, 1)})
