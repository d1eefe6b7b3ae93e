"""The report's pictures, as plotly figures (``None`` when a study has nothing to draw).

Each function reads a :class:`~snt_search.report.data.StudyData` and returns a
``plotly.graph_objects.Figure``. Groups (transform x optimizer) keep one colour in every
figure; hovering a point names its trial. Axes of lambda_max turn logarithmic when the values
span more than 30x (the paper's Table 3 spans 2.4 to 1417). plotly is imported lazily: without
it, :func:`require_plotly` says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .data import StudyData, finite
from .figure_style import (
    LABELS,
    colors,
    finite_rows,
    hover,
    layout,
    log_if_wide,
    require_plotly,
)
from .stats import Correlation

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "compression_figure",
    "cost_figure",
    "front_figure",
    "require_plotly",
    "sharpness_figure",
    "training_figure",
]


def front_figure(data: StudyData) -> go.Figure | None:
    """Finished trials in the plane of the first two objectives, the front joined by a line;
    with three or more objectives, every pair of them (a scatter matrix, front outlined)."""
    if len(data.objectives) < 2:
        return None
    go = require_plotly()
    if len(data.objectives) > 2:
        return _pairs_figure(data)
    x_name, y_name = data.objectives[:2]
    rows = [r for r in data.finished if r.values is not None and finite(*r.values[:2])]
    if not rows:
        return None
    fig = go.Figure()
    palette = colors(data)
    for group, members in data.groups(rows).items():
        fig.add_trace(
            go.Scatter(
                x=[r.values[0] for r in members if r.values],
                y=[r.values[1] for r in members if r.values],
                mode="markers",
                name=group,
                marker={
                    "color": palette[group],
                    "size": [13 if r.on_front else 8 for r in members],
                    "line": {"width": [2 if r.on_front else 0 for r in members], "color": "black"},
                },
                text=[hover(r) for r in members],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    front = sorted((r for r in rows if r.on_front), key=lambda r: r.values[0] if r.values else 0)
    fig.add_trace(
        go.Scatter(
            x=[r.values[0] for r in front if r.values],
            y=[r.values[1] for r in front if r.values],
            mode="lines",
            name="Pareto front",
            line={"color": "black", "dash": "dot", "shape": "hv"},
            hoverinfo="skip",
        )
    )
    layout(fig, "Pareto front (outlined points; lower-left is better)", x_name, y_name)
    log_if_wide(fig, [r.values[0] for r in rows if r.values], axis="x")
    return fig


def _pairs_figure(data: StudyData) -> go.Figure | None:
    """Each pair of objectives in one panel; front trials larger and outlined. A front of
    three objectives is no staircase in any one plane, so no line joins it."""
    go = require_plotly()
    n = len(data.objectives)
    rows = [r for r in data.finished if r.values is not None and finite(*r.values[:n])]
    if not rows:
        return None
    fig = go.Figure()
    palette = colors(data)
    for group, members in data.groups(rows).items():
        fig.add_trace(
            go.Splom(
                dimensions=[
                    {
                        "label": LABELS.get(m, m),
                        "values": [r.values[i] for r in members if r.values],
                    }
                    for i, m in enumerate(data.objectives)
                ],
                name=group,
                diagonal_visible=False,
                showupperhalf=False,
                marker={
                    "color": palette[group],
                    "size": [11 if r.on_front else 6 for r in members],
                    "line": {"width": [2 if r.on_front else 0 for r in members], "color": "black"},
                },
                text=[hover(r) for r in members],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Pareto front of {n} objectives, two at a time (outlined points; lower is better"
        " for minimised objectives)",
        height=220 * n,
        template="plotly_white",
        legend={"title": "transform + optimizer"},
    )
    return fig


def sharpness_figure(data: StudyData, corr: Correlation) -> go.Figure | None:
    """lambda_max against accuracy drop, one point per finished trial with finite values."""
    go = require_plotly()
    rows = finite_rows(data.finished, "lambda_max", "accuracy_drop")
    if not rows:
        return None
    fig = go.Figure()
    palette = colors(data)
    for group, members in data.groups(rows).items():
        fig.add_trace(
            go.Scatter(
                x=[r.metric("lambda_max") for r in members],
                y=[r.metric("accuracy_drop") for r in members],
                mode="markers",
                name=group,
                marker={
                    "color": palette[group],
                    "size": 10,
                    "symbol": [
                        "circle-open" if r.sharpness.get("converged") is False else "circle"
                        for r in members
                    ],
                },
                text=[hover(r) for r in members],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    layout(
        fig,
        f"Sharpness vs accuracy drop: Spearman {corr.describe()}",
        "lambda_max",
        "accuracy_drop",
    )
    log_if_wide(fig, [r.metric("lambda_max") for r in rows], axis="x")
    return fig


def compression_figure(data: StudyData) -> go.Figure | None:
    """Accuracy-vs-compression curves per group when trials carry them, else drop per group.

    Curves come from each trial's sweep (a ``sweep`` attribute or ``compression_report``'s);
    failing that, from trials of one group compressed to two or more levels (mean accuracy
    per level). Otherwise: accuracy drop per group as box plots with every trial shown.
    """
    go = require_plotly()
    palette = colors(data)
    fig = go.Figure()
    swept = [r for r in data.finished if r.sweep is not None]
    if swept:
        shown: set[str] = set()
        for r in swept:
            assert r.sweep is not None
            fig.add_trace(
                go.Scatter(
                    x=list(r.sweep.xs),
                    y=list(r.sweep.ys),
                    mode="lines+markers",
                    name=r.group,
                    legendgroup=r.group,
                    showlegend=r.group not in shown,
                    line={"color": palette[r.group]},
                    hovertemplate=f"trial {r.number}<br>%{{x:.2f}}: %{{y:.2f}}%<extra>{r.group}</extra>",
                )
            )
            shown.add(r.group)
        x_name = swept[0].sweep.x if swept[0].sweep else "level"
        layout(fig, f"Accuracy vs {x_name} (one line per trial)", x_name, "accuracy (%)")
        return fig
    curves = level_curves(data)
    if curves:
        for group, (_, xs, ys) in curves.items():
            fig.add_trace(
                go.Scatter(
                    x=xs, y=ys, mode="lines+markers", name=group, line={"color": palette[group]}
                )
            )
        x_name = next(iter(curves.values()))[0]
        layout(
            fig, f"Accuracy vs {x_name} (mean over trials per level)", x_name, "compressed_accuracy"
        )
        return fig
    rows = finite_rows(data.finished, "accuracy_drop")
    if not rows:
        return None
    for group, members in data.groups(rows).items():
        fig.add_trace(
            go.Box(
                y=[r.metric("accuracy_drop") for r in members],
                name=group,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": palette[group], "size": 8},
                text=[hover(r) for r in members],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    layout(fig, "Accuracy drop per group (each dot a trial)", "", "accuracy_drop")
    fig.update_layout(showlegend=False)
    return fig


def level_curves(data: StudyData) -> dict[str, tuple[str, list[float], list[float]]]:
    """Group -> (axis, levels, mean compressed accuracy) for groups with >= 2 levels."""
    out: dict[str, tuple[str, list[float], list[float]]] = {}
    for group, members in data.groups(finite_rows(data.finished, "compressed_accuracy")).items():
        by_level: dict[tuple[str, float], list[float]] = {}
        for r in members:
            point = r.compression_point()
            acc = r.metric("compressed_accuracy")
            if point and acc is not None:
                by_level.setdefault((point[0], round(point[1], 2)), []).append(acc)
        axes = {k[0] for k in by_level}
        if len(by_level) >= 2 and len(axes) == 1:
            levels = sorted(by_level)
            out[group] = (
                levels[0][0],
                [k[1] for k in levels],
                [sum(by_level[k]) / len(by_level[k]) for k in levels],
            )
    return out


def cost_figure(data: StudyData) -> go.Figure | None:
    """Training throughput (images/s) and wall time per group, side by side."""
    go = require_plotly()
    from plotly.subplots import make_subplots

    rows = finite_rows(data.finished, "images_per_s")
    if not rows:
        return None
    palette = colors(data)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("training throughput (images/s, higher is cheaper)", "training time (s)"),
    )
    for group, members in data.groups(rows).items():
        for col, metric in ((1, "images_per_s"), (2, "train_time_s")):
            fig.add_trace(
                go.Box(
                    y=[r.metric(metric) for r in members],
                    name=group,
                    boxpoints="all",
                    pointpos=0,
                    jitter=0.4,
                    marker={"color": palette[group], "size": 7},
                    showlegend=False,
                    text=[hover(r) for r in members],
                    hovertemplate="%{text}<br>%{y:.4g}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_layout(
        title="Training cost per group", height=440, margin={"t": 80}, template="plotly_white"
    )
    fig.update_yaxes(rangemode="tozero")
    return fig


def training_figure(data: StudyData) -> go.Figure | None:
    """Test accuracy per epoch of every finished trial that trained two epochs or more."""
    go = require_plotly()
    rows = [r for r in data.finished if len(r.curve) >= 2]
    if not rows:
        return None
    palette = colors(data)
    fig = go.Figure()
    shown: set[str] = set()
    for r in rows:
        fig.add_trace(
            go.Scatter(
                x=[c.get("epoch") for c in r.curve],
                y=[c.get("test_accuracy") for c in r.curve],
                mode="lines",
                name=r.group,
                legendgroup=r.group,
                showlegend=r.group not in shown,
                line={"color": palette[r.group]},
                hovertemplate=f"trial {r.number}: epoch %{{x}}, %{{y:.2f}}%<extra></extra>",
            )
        )
        shown.add(r.group)
    layout(fig, "Test accuracy during training", "epoch", "test accuracy (%)")
    return fig
