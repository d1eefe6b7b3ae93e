"""Accuracy versus sparsity, as the curves of the SNT paper's Fig. 5.

Fig. 5 evaluates pruning "in 10% increments" of sparsity. :func:`sweep` compresses a fresh
copy of the model at every sparsity with a pruning compressor (``magnitude_prune`` for the
one-shot column, ``imp`` for the iterative one), evaluates it and returns the curve with its
area under the curve, so a study can record one number per trial that summarizes robustness
to pruning across all sparsities instead of at one point.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from snt_search.specs import CompressionContext, CompressionReport, Compressor, PluginError

__all__ = ["FIG5_SPARSITIES", "SweepResult", "sweep"]

FIG5_SPARSITIES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))  # 0.0 .. 0.9


@dataclass(frozen=True)
class SweepResult:
    """One accuracy curve. ``auc`` is the trapezoid area over the measured sparsities;
    ``mean_accuracy`` is ``auc`` divided by the sparsity range (in accuracy units)."""

    sparsities: tuple[float, ...]
    accuracies: tuple[float, ...]
    reports: tuple[CompressionReport, ...] = field(repr=False)

    @property
    def auc(self) -> float:
        xs, ys = self.sparsities, self.accuracies
        return sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(len(xs) - 1))

    @property
    def mean_accuracy(self) -> float:
        span = self.sparsities[-1] - self.sparsities[0]
        return self.auc / span if span > 0 else self.accuracies[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "sparsities": list(self.sparsities),
            "accuracies": list(self.accuracies),
            "auc": self.auc,
            "mean_accuracy": self.mean_accuracy,
        }


def sweep(
    model: nn.Module,
    compressor: Compressor,
    context: CompressionContext,
    evaluate: Callable[[nn.Module], float],
    sparsities: Sequence[float] = FIG5_SPARSITIES,
    **params: Any,
) -> SweepResult:
    """Compress a deep copy of ``model`` at each sparsity and ``evaluate`` it.

    ``model`` itself is never modified. ``params`` go to ``compressor.compress`` at every
    point (e.g. ``scope="layer"``). The x axis of the curve is the sparsity *measured* by the
    compressor's report (it can exceed the requested one), points in the order of increasing
    sparsity.
    """
    if "sparsity" not in compressor.defaults:
        raise PluginError(
            f"sweep needs a compressor with a 'sparsity' parameter; {compressor.name!r} "
            f"accepts {sorted(compressor.defaults)}. Fix: sweep a pruning compressor "
            "such as 'magnitude_prune' or 'imp'."
        )
    if "sparsity" in params:
        raise PluginError("sweep sets 'sparsity' itself; pass the list as sparsities=... .")
    if len(sparsities) < 2:
        raise PluginError(f"a curve needs >= 2 sparsities, got {list(sparsities)}.")
    points = []
    for target in sorted(sparsities):
        candidate = copy.deepcopy(model)
        report = compressor.compress(candidate, context, sparsity=float(target), **params)
        measured = float(report.metrics.get("sparsity", target))
        points.append((measured, float(evaluate(candidate)), report))
    return SweepResult(
        sparsities=tuple(p[0] for p in points),
        accuracies=tuple(p[1] for p in points),
        reports=tuple(p[2] for p in points),
    )
