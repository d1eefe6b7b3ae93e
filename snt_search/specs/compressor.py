"""Compressor plugins: compress a trained model so the study can measure the accuracy it loses.

Contract: ``Compressor.compress(model, context, **params)`` compresses ``model`` in place (the
pipeline hands it a copy, the trained original stays untouched) and returns a
:class:`CompressionReport` with what was achieved, measured on the model (e.g. the real
``sparsity``, not the requested one). ``context`` gives calibration batches and, for methods
that fine-tune, a ``finetune(model, epochs)`` callback that trains on the study's data.

Optional hook, for saving and reloading compressed models (``docs/export.md``):
``Compressor.restore(model, **params)`` gives a freshly built (and transformed) model the
*structure* ``compress`` leaves behind, without data and without training, so that the
compressed model's ``state_dict`` then loads into it with ``strict=True``. A compressor that
does not implement it can still be searched; only its compressed models cannot be exported.

Optional declaration: ``metrics`` maps keys of the report to the direction that is better
(``{"sparsity": "maximize"}``). Each declared key is recorded as a metric of every trial
using the compressor, so a space may use it as an objective or a constraint (a report
missing a declared key fails the trial, naming it).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .base import Plugin, PluginError

__all__ = ["CompressionContext", "CompressionReport", "Compressor", "RestoreUnsupported"]

if TYPE_CHECKING:  # torch is imported by the plugins, not by the contract
    import torch
    from torch import nn

    Batch = tuple[torch.Tensor, torch.Tensor]


class RestoreUnsupported(PluginError):
    """A compressor has no ``restore`` hook, so its compressed models cannot be rebuilt."""

    @classmethod
    def of(cls, compressor: str) -> RestoreUnsupported:
        """The error for the compressor named ``compressor``, with the fix."""
        return cls(
            f"compressor {compressor!r} has no restore hook, so a model it compressed cannot "
            "be rebuilt from its weights. Fix: implement Compressor.restore(model, **params) "
            "in the plugin (docs/export.md), or export the trained model (--which trained)."
        )


@dataclass(frozen=True)
class CompressionContext:
    """What a compressor may use besides the model: data, fine-tuning, device, seed."""

    calibration: Sequence[Batch] = ()
    finetune: Callable[[nn.Module, int], None] | None = None
    device: torch.device = field(default_factory=lambda: _cpu())
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
    # report key -> "minimize" | "maximize": recorded as trial metrics (module docstring)
    metrics: ClassVar[Mapping[str, str]] = {}

    @abstractmethod
    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        """Compress ``model`` in place; see the module docstring."""

    def restore(self, model: nn.Module, **params: Any) -> None:
        """Give ``model`` the structure ``compress(model, ..., **params)`` leaves; no data.

        ``model`` is built and transformed exactly like the one that was compressed, with the
        same ``params``. Add what ``compress`` adds to the module tree (quantizer modules,
        forward hooks, patched block classes) so the compressed ``state_dict`` loads with
        ``strict=True`` and the model then computes what the compressed one did; values need
        not be right, the state dict overwrites them. A compressor that only changes weight
        values (pruning made permanent) has nothing to add and implements this as a no-op.
        The default refuses: see :meth:`can_restore`.
        """
        raise RestoreUnsupported.of(self.name)

    @classmethod
    def can_restore(cls) -> bool:
        """True when the class implements :meth:`restore` (its compressed models export)."""
        return cls.restore is not Compressor.restore


def _cpu() -> torch.device:
    import torch

    return torch.device("cpu")
