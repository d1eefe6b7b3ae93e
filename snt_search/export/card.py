"""The ``README.md`` model card of an export folder, written from the model's config alone.

It says what the model is (plugins and their parameters, trained or compressed), how to load
and feed it, and what the trial measured: base and compressed accuracy, the drop, lambda_max
with its diagnostics (method, iterations, convergence, error estimate), the compression
report, the training data and the budget. Numbers are the ones stored with the trial, never
re-measured here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import KINDS, ModelConfig

__all__ = ["model_card"]

_SHARPNESS_KEYS = (
    "method",
    "backend",
    "iterations",
    "hvp_count",
    "converged",
    "error_estimate",
    "relative_residual",
    "samples",
    "seed",
)


def model_card(config: ModelConfig, *, file_bytes: int, coded_tensors: int, folder: str) -> str:
    """Markdown for ``config``'s export folder ``folder`` (shown in the loading example)."""
    trial = config.trial
    metrics: Mapping[str, Any] = trial.get("metrics") or {}
    reports: Mapping[str, Any] = trial.get("reports") or {}
    p = config.plugins
    what = f"compressed with {p['compressor']}" if config.which == "compressed" else "trained"
    origin = (
        f"trial {trial['number']} of study {trial.get('study', '?')!r}"
        if "number" in trial
        else "a model saved with snt-search"
    )
    ds = config.dataset
    lines = [
        f"# {p['backbone']} + {p['transform']}, {what}",
        "",
        f"From {origin}, exported by snt-search {config.snt_search_version} "
        f"(model format {config.format}). Optimizer during training: {p['optimizer']}.",
        "",
        "## Load",
        "",
        "```python",
        "import snt_search",
        f'model = snt_search.load_model("{folder}")  # eval mode, on the CPU',
        "logits = model((images / 255 - mean) / std)  # images: float [B, C, H, W] in 0..255",
        "```",
        "",
        f"Input: {ds.get('in_chans')} x {ds.get('image_size')} x {ds.get('image_size')}, "
        f"mean {_fmt(ds.get('mean'))}, std {_fmt(ds.get('std'))} (0..1 units); "
        f"{ds.get('num_classes')} classes: {', '.join(map(str, ds.get('classes', [])))}.",
        "The plugins named below must be installed (`snt-search plugins`).",
        "",
        "## Measured by the trial (test subset of the study)",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    for key, label, unit in (
        ("base_accuracy", "base accuracy (trained model)", " %"),
        ("compressed_accuracy", "compressed accuracy", " %"),
        ("accuracy_drop", "accuracy drop", " pp"),
        ("lambda_max", "λ_max (top Hessian eigenvalue of the training loss)", ""),
        ("n_params", "parameters", ""),
        ("train_time_s", "training time", " s"),
    ):
        if key in metrics:
            lines.append(f"| {label} | {_fmt(metrics[key])}{unit} |")
    sharp = reports.get("sharpness") or {}
    if sharp:
        lines += ["", "λ_max diagnostics:", ""]
        lines += [f"- {k}: {_fmt(sharp[k])}" for k in _SHARPNESS_KEYS if k in sharp]
    lines += ["", f"## Compression: {p['compressor']}", ""]
    lines += _table(config.params.get("compressor", {}), "parameter")
    compression = {k: v for k, v in (reports.get("compression") or {}).items() if k != "compressor"}
    if compression:
        lines += ["", "Report (measured on the compressed model):", ""]
        lines += _table(compression, "measure")
    lines += ["", "## Plugins and parameters", ""]
    lines += ["| kind | plugin | parameters |", "| --- | --- | --- |"]
    for kind in KINDS:
        params = config.params.get(kind, {})
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items()) or "defaults"
        lines.append(f"| {kind} | {p[kind]} | {shown} |")
    lines += ["", "## Training data and budget", ""]
    budget = trial.get("budget") or {}
    train = trial.get("train") or {}
    lines.append(
        f"Dataset {p['dataset']} ({_params(config.params.get('dataset', {}))}); budget "
        f"{budget.get('name', '?')}: {_params(budget, skip=('name',))}; seed {trial.get('seed', '?')}."
    )
    if train:
        lines += ["", f"Training: {_params(train)}."]
    lines += [
        "",
        "## File",
        "",
        f"`model.safetensors`: {file_bytes / 1024:.1f} KiB; {coded_tensors} weight tensor(s) "
        "stored as int8 integer codes with a float32 scale per row (lossless for quantized "
        "weights), the rest as they are. `config.json` says how to rebuild the module.",
        "",
    ]
    return "\n".join(lines)


def _table(values: Mapping[str, Any], head: str) -> list[str]:
    if not values:
        return ["(none)"]
    return [f"| {head} | value |", "| --- | --- |"] + [
        f"| {k} | {_fmt(v)} |" for k, v in values.items()
    ]


def _params(values: Mapping[str, Any], skip: tuple[str, ...] = ()) -> str:
    shown = [f"{k}={_fmt(v)}" for k, v in values.items() if k not in skip and v is not None]
    return ", ".join(shown) or "defaults"


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)
