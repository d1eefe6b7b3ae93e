"""Helpers shared by the compressor plugins (pruning now; quantization and sweeps follow).

SNT paper, Sec. 2.1 and 5.2: one-shot and iterative magnitude pruning, post-training and
quantization-aware quantization. The plugins in ``snt_search_builtins.compressors`` are thin
wrappers around these functions; see ``docs/compressors.md``.
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
    "check_sparsity",
    "make_permanent",
    "measure_sparsity",
    "prunable_weights",
    "prune_to",
    "sparsity_schedule",
    "sweep",
    "SweepResult",
]
