"""Compressor plugins: compress a trained model so the study can measure the accuracy it loses.

Contract: ``Compressor.compress(model, context, **params)`` compresses ``model`` in place (the
pipeline hands it a copy, the trained original stays untouched) and returns a
:class:`CompressionReport` with what was achieved, measured on the model (e.g. the real
``sparsity``, not the requested one). ``context`` gives calibration batches and, for methods
that fine-tune, a ``finetune(model, epochs)`` callback that trains on the study's data.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from .base import Plugin

__all__ = ["CompressionContext", "CompressionReport", "Compressor"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class CompressionContext:
    """What a compressor may use besides the model: data, fine-tuning, device, seed."""

    calibration: Sequence[Batch] = ()
    finetune: Callable[[nn.Module, int], None] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0


@dataclass(frozen=True)
class CompressionReport:
    """Measured outcome of a compression, e.g. ``{"sparsity": 0.5012}``."""

    compressor: str
    metrics: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"compressor": self.compressor, **dict(self.metrics)}


class Compressor(Plugin):
    """Base class of compressor plugins (entry-point group ``snt_search.compressors``)."""

    kind: ClassVar[str] = "compressor"

    @abstractmethod
    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        """Compress ``model`` in place; see the module docstring."""
