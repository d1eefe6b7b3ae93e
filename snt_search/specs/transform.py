"""Transform plugins: rewrite a freshly built model's architecture before training.

Contract: ``Transform.apply(model, **params)`` changes ``model`` in place and returns a
:class:`TransformReport` saying what it replaced. A transform that cannot rewrite a model
raises :class:`TransformNotApplicable` naming the model and what it looked for; it never
silently returns the model unchanged. This is where SNT lives (paper Sec. 4: pre-activation
reordering, Fig. 4, and the learnable-bias PReLU of Eq. 1).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .base import Plugin, PluginError

if TYPE_CHECKING:  # torch is imported by the plugins, not by the contract
    from torch import nn

__all__ = ["Transform", "TransformNotApplicable", "TransformReport"]


class TransformNotApplicable(PluginError):
    """The transform does not know how to rewrite this model."""


@dataclass(frozen=True)
class TransformReport:
    """What a transform did: counts of replaced/inserted modules and parameters added."""

    transform: str
    replaced: Mapping[str, int] = field(default_factory=dict)
    added_params: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "transform": self.transform,
            "replaced": dict(self.replaced),
            "added_params": self.added_params,
        }


class Transform(Plugin):
    """Base class of transform plugins (entry-point group ``snt_search.transforms``)."""

    kind: ClassVar[str] = "transform"

    @abstractmethod
    def apply(self, model: nn.Module, **params: Any) -> TransformReport:
        """Rewrite ``model`` in place; see the module docstring."""
