"""Iterative magnitude pruning (IMP): prune a little, fine-tune, repeat.

SNT paper, Sec. 2.1.1 (IMP of Han et al. [20] and Frankle & Carbin [16]) and Sec. 5.2.2
"Iterative Magnitude Pruning" (Fig. 5, left column: "the exponential pruner"). Over ``steps``
steps the Linear/Conv weights are magnitude-pruned to the next sparsity of the schedule
(``"exponential"`` or the cubic ``"cubic"`` AGP schedule) and the model is fine-tuned for
``epochs_per_step`` epochs with ``context.finetune``. Masks stay live during fine-tuning
(``torch.nn.utils.prune`` forward pre-hooks), so pruned weights stay at zero; they are made
permanent at the end. Targets are absolute and existing zeros count, so the schedule starts
from the sparsity the model already has.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from snt_search.compression import (
    make_permanent,
    measure_sparsity,
    prunable_weights,
    prune_to,
    sparsity_schedule,
)
from snt_search.specs import (
    CompressionContext,
    CompressionReport,
    Compressor,
    Param,
    PluginError,
    Range,
)

__all__ = ["IterativeMagnitudePrune"]


class IterativeMagnitudePrune(Compressor):
    """Iterative magnitude pruning with fine-tuning between steps (Fig. 5, IMP)."""

    metrics: ClassVar[dict[str, str]] = {"sparsity": "maximize"}  # report keys usable as objectives
    defaults: ClassVar[dict[str, Param]] = {
        "sparsity": 0.5,  # final fraction of the targeted weights that are zero
        "steps": 5,  # number of prune -> fine-tune cycles
        "schedule": "exponential",  # "exponential" (IMP) | "cubic" (AGP, Zhu & Gupta 2017)
        "epochs_per_step": 1,  # fine-tuning epochs after each pruning step
        "scope": "global",  # "global" | "layer", as magnitude_prune
        "skip_first_last": False,  # leave the first and last Linear/Conv layer dense
    }
    ranges: ClassVar[dict[str, Range]] = {
        "sparsity": Range(0.0, 1.0, high_open=True),
        "steps": Range(1),
        "epochs_per_step": Range(0),
    }

    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        """Prune ``model`` in place over the schedule; report the final measured sparsity."""
        p = self.resolve_params(params)
        if context.finetune is None:
            raise PluginError(
                f"compressor {self.name!r} fine-tunes between pruning steps, but the "
                "CompressionContext has finetune=None. Fix: give the context a "
                "finetune(model, epochs) callback, or use 'magnitude_prune' (one-shot)."
            )
        epochs = int(p["epochs_per_step"])
        if epochs < 0:
            raise PluginError(f"epochs_per_step must be >= 0, got {epochs}. Fix: e.g. 1.")
        targets = prunable_weights(model, skip_first_last=bool(p["skip_first_last"]))
        make_permanent(targets)
        start = measure_sparsity(model, targets)["sparsity"]
        schedule = sparsity_schedule(
            float(p["sparsity"]), int(p["steps"]), str(p["schedule"]), initial=start
        )
        try:
            for target in schedule:
                prune_to(targets, target, scope=str(p["scope"]))
                if epochs:
                    context.finetune(model, epochs)
        finally:
            make_permanent(targets)
        metrics = measure_sparsity(model, targets)
        return CompressionReport(
            self.name,
            {
                **metrics,
                "target_sparsity": float(p["sparsity"]),
                "steps": float(len(schedule)),
                "finetune_epochs": float(epochs * len(schedule)),
            },
        )

    def restore(self, model: nn.Module, **params: Any) -> None:
        """Nothing to add: the masks are made permanent, the zeros live in the weights."""
        self.resolve_params(params)
