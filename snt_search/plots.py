"""Pictures of a study: the Pareto front (interactive HTML, or PNG) and its hypervolume history.

The HTML page holds Optuna's own plotly figures (``plot_pareto_front`` with every finished
trial, and the hypervolume history stored with the study), with plotly.js embedded so it opens
offline. The PNG is drawn with matplotlib: plotly's PNG export needs kaleido and a browser
build of its own, which cannot be installed offline. Both need their package (``pip install
plotly`` / ``pip install matplotlib``; the ``plot`` extra has both) and say so when absent.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from .pareto import front_rows, objective_names

__all__ = ["write_html", "write_png"]


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise ValueError(
            f"drawing this needs {package}, which is not installed; "
            f"pip install {package} (or pip install 'snt-search[plot]')"
        ) from None


def write_html(study: optuna.Study, path: Path) -> Path:
    """An offline HTML page: Pareto-front scatter (all trials) and hypervolume history."""
    _need("plotly")
    import plotly.graph_objects as go

    names = objective_names(study)
    figures = [optuna.visualization.plot_pareto_front(study, target_names=names)]
    history = study.user_attrs.get("hypervolume_history") or []
    if history:
        steps = list(history) + [[max(t.number for t in study.trials), history[-1][1]]]
        hv = go.Figure(
            go.Scatter(
                x=[s[0] for s in steps],
                y=[s[1] for s in steps],
                mode="lines+markers",
                line_shape="hv",
            )
        )
        reference = study.user_attrs.get("hypervolume_reference")
        hv.update_layout(
            title=f"Hypervolume history (reference point {reference})",
            xaxis_title="trial",
            yaxis_title="hypervolume",
        )
        figures.append(hv)
    parts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)
    ]
    title = f"Pareto front of {study.study_name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1>{''.join(parts)}</body></html>\n",
        encoding="utf-8",
    )
    return path


def write_png(study: optuna.Study, path: Path) -> Path:
    """A PNG of the first two objectives: every finished trial, the front highlighted."""
    _need("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = objective_names(study)
    if len(names) < 2:
        raise ValueError(f"a Pareto plot needs >= 2 objectives; study {study.study_name!r} has 1")
    points = [
        (t.number, t.values)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values is not None and all(math.isfinite(v) for v in t.values)
    ]
    front = {r["trial"] for r in front_rows(study)}
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    others = [v for n, v in points if n not in front]
    best = sorted((v for n, v in points if n in front), key=lambda v: v[0])
    if others:
        ax.scatter([v[0] for v in others], [v[1] for v in others], c="0.6", s=18, label="trials")
    if best:
        ax.plot([v[0] for v in best], [v[1] for v in best], "o-", c="tab:red", label="Pareto front")
    for n, v in points:
        if n in front:
            ax.annotate(str(n), (v[0], v[1]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    directions = [d.name.lower() for d in study.directions]
    ax.set_xlabel(f"{names[0]} ({directions[0]})")
    ax.set_ylabel(f"{names[1]} ({directions[1]})")
    ax.set_title(f"{study.study_name}: {len(points)} finished trials, {len(best)} on the front")
    ax.grid(alpha=0.3)
    if points:
        ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
