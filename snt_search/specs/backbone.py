"""Backbone plugins: build an untrained classifier for a given input and class count.

Contract: ``Backbone.build(num_classes=, image_size=, in_chans=, **params)`` returns a fresh
``torch.nn.Module`` mapping float images ``[B, in_chans, image_size, image_size]`` to logits
``[B, num_classes]``. No pretrained weights are loaded (studies train from scratch, as in the
paper). ``family`` (``"mixer"``, ``"resnet"``, ``"vit"``, ``"cnn"`` or ``""``) is a descriptive
label only: nothing reads it, transforms inspect the model's modules (docs/plugins.md).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from .base import Plugin

if TYPE_CHECKING:  # torch is imported by the plugins, not by the contract
    from torch import nn

__all__ = ["Backbone"]


class Backbone(Plugin):
    """Base class of backbone plugins (entry-point group ``snt_search.backbones``)."""

    kind: ClassVar[str] = "backbone"
    family: ClassVar[str] = ""

    @abstractmethod
    def build(
        self, *, num_classes: int, image_size: int, in_chans: int, **params: Any
    ) -> nn.Module:
        """Return a new, randomly initialised model; see the module docstring."""
