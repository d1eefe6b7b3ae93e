"""Helpers shared by the compressor plugins (SNT paper, Sec. 2.1 and 5.2; Tables 2-3, Fig. 5).

Re-exported here: magnitude pruning (:mod:`.pruning`) and the accuracy-vs-sparsity sweep of
Fig. 5 (:mod:`.sweep`). Import the rest from their modules: simulated quantization
(:mod:`.quant`), two-sided PACT clipping (:mod:`.pact`) and ViT token pruning/merging
(:mod:`.tokens`). The plugins in ``snt_search_builtins.compressors`` are thin wrappers around
these functions; see ``docs/compressors.md``.
"""

from __future__ import annotations

from .pruning import (
    PRUNABLE_TYPES,
    SCHEDULES,
    SCOPES,
    PruneTarget,
    check_sparsity,
    make_permanent,
    measure_sparsity,
    prunable_weights,
    prune_to,
    sparsity_schedule,
)
from .sweep import FIG5_SPARSITIES, SweepResult, sweep

__all__ = [
    "FIG5_SPARSITIES",
    "PRUNABLE_TYPES",
    "SCHEDULES",
    "SCOPES",
    "PruneTarget",
    "SweepResult",
    "check_sparsity",
    "make_permanent",
    "measure_sparsity",
    "prunable_weights",
    "prune_to",
    "sparsity_schedule",
    "sweep",
]
