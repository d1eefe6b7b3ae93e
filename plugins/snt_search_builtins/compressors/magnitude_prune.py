"""One-shot unstructured magnitude pruning, no fine-tuning.

SNT paper, Sec. 5.2.2 "One-shot Pruning" (Fig. 5, right column) and Table 2 "Weight Pruning
(50% Sparsity)": the smallest-magnitude weights of the Linear and Conv layers are set to zero,
globally (default) or layer by layer, with ``torch.nn.utils.prune``; the masks are then made
permanent so the model saves and loads as a plain ``state_dict``.

The target sparsity is absolute and existing zeros count (see
:mod:`snt_search.compression.pruning`): pruning an already pruned model again to the same
sparsity changes nothing; to a lower one it keeps the higher, measured sparsity and warns.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from torch import nn

from snt_search.compression import make_permanent, measure_sparsity, prunable_weights, prune_to
from snt_search.specs import CompressionContext, CompressionReport, Compressor, Param, Range

__all__ = ["MagnitudePrune"]


class MagnitudePrune(Compressor):
    """One-shot magnitude pruning of Linear/Conv weights to a target sparsity (Fig. 5, Table 2)."""

    metrics: ClassVar[dict[str, str]] = {"sparsity": "maximize"}  # report keys usable as objectives
    defaults: ClassVar[dict[str, Param]] = {
        "sparsity": 0.5,  # fraction of the targeted weights that are zero afterwards
        "scope": "global",  # "global": rank all layers together; "layer": each layer alone
        "skip_first_last": False,  # leave the first and last Linear/Conv layer dense
    }
    ranges: ClassVar[dict[str, Range]] = {"sparsity": Range(0.0, 1.0, high_open=True)}

    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        """Prune ``model`` in place; report the sparsity measured on it afterwards."""
        p = self.resolve_params(params)
        sparsity = float(p["sparsity"])
        targets = prunable_weights(model, skip_first_last=bool(p["skip_first_last"]))
        prune_to(targets, sparsity, scope=str(p["scope"]))
        make_permanent(targets)
        metrics = measure_sparsity(model, targets)
        if metrics["sparsity"] > sparsity + 0.01:
            warnings.warn(
                f"{self.name}: the model was already {metrics['sparsity']:.3f} sparse, more "
                f"than the requested sparsity={sparsity}; pruned weights can't be restored, "
                "so the report gives the measured sparsity. Fix: start from the dense model.",
                stacklevel=2,
            )
        return CompressionReport(self.name, {**metrics, "target_sparsity": sparsity})

    def restore(self, model: nn.Module, **params: Any) -> None:
        """Nothing to add: the masks are made permanent, the zeros live in the weights."""
        self.resolve_params(params)
