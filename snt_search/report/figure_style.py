"""What every figure of the report shares: group colours, axis labels, hover text, layout,
and the logarithmic axis for wide lambda_max ranges (see :mod:`.figures`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .data import StudyData, TrialRow, finite

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["LABELS", "colors", "finite_rows", "hover", "layout", "log_if_wide", "require_plotly"]

PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
    "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
)  # fmt: skip
LABELS = {
    "lambda_max": "λ_max (top Hessian eigenvalue)",
    "accuracy_drop": "accuracy drop (points)",
    "compressed_accuracy": "accuracy after compression (%)",
    "base_accuracy": "accuracy before compression (%)",
    "model_bytes": "compressed model (bytes stored)",
    "params": "non-zero parameters",
    "latency_ms": "forward latency (ms per batch)",
}


def require_plotly() -> Any:
    """``plotly.graph_objects``, or ImportError saying how to install plotly."""
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - plotly is a test dependency
        raise ImportError(
            "snt-search report draws its figures with plotly, which is not installed; "
            "fix: pip install 'snt-search[report]' (or pip install plotly)"
        ) from exc
    return go


def colors(data: StudyData) -> dict[str, str]:
    """Group -> colour, stable for a study (groups in :meth:`StudyData.groups` order)."""
    names = list(data.groups(data.trials))
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(names)}


def finite_rows(rows: Iterable[TrialRow], *metrics: str) -> list[TrialRow]:
    """The rows whose ``metrics`` are all finite numbers."""
    return [r for r in rows if finite(*(r.metric(m) for m in metrics))]


def hover(r: TrialRow) -> str:
    """A trial's hover text: number, group and its metrics."""
    parts = [f"trial {r.number}: {r.group}"]
    for m in ("lambda_max", "accuracy_drop", "base_accuracy", "compressed_accuracy"):
        v = r.metric(m)
        if v is not None:
            parts.append(f"{m} = {v:.4g}")
    return "<br>".join(parts)


def layout(fig: go.Figure, title: str, x: str, y: str) -> None:
    """The report's common title, axis labels (:data:`LABELS`), size and legend."""
    fig.update_layout(
        title=title,
        xaxis_title=LABELS.get(x, x),
        yaxis_title=LABELS.get(y, y),
        height=460,
        template="plotly_white",
        legend={"title": "transform + optimizer"},
        margin={"t": 70},
    )


def log_if_wide(fig: go.Figure, values: Iterable[float | None], *, axis: str) -> None:
    """A log axis with ticks at 1, 2, 5 x 10^k when ``values`` span more than 30x."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals or min(vals) <= 0 or max(vals) / min(vals) <= 30:
        return
    low, high = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
    ticks = [m * 10.0**k for k in range(low, high + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if min(vals) / 2 <= t <= max(vals) * 2]
    fig.update_layout(
        {
            f"{axis}axis_type": "log",
            f"{axis}axis_tickvals": ticks,
            f"{axis}axis_ticktext": [f"{t:g}" for t in ticks],
        }
    )
