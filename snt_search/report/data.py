"""A study read into a tidy table: one :class:`TrialRow` per trial, plain Python values.

Only Optuna's public API is used, so any storage ``snt-search study`` writes to works. Data
flows one way: storage -> :class:`StudyData` -> statistics, figures, HTML and Markdown; the
report never writes to the study.

Conventions:
- a *finished* trial is COMPLETE; a *failed* one is FAIL (``fail_reason`` says why, when the
  driver recorded it), except a *surplus* one (FAIL with the ``surplus`` attribute: the driver
  ended it unrun because the study already had its trials; never a result, never a failure);
  RUNNING/WAITING/PRUNED trials are listed but not analysed;
- metrics are floats, ``None`` when the trial does not carry them; non-finite values are kept
  as they are (NaN, inf) and left out of statistics and the front by :func:`finite`;
- the *group* of a trial is its transform x optimizer (prefixed by the dataset, backbone or
  compressor when the study varies those), the unit the paper compares (ADAM, SAM, ARCH);
- the Pareto front is :func:`snt_search.pareto.front_trials` (finished, feasible under the
  trials' stored constraints, finite, non-dominated): the front of ``snt-search pareto`` and of
  the study's stored ``pareto_front``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from ..pareto import front_trials, objective_names
from ..storage import DEFAULT_STORAGE, open_storage

__all__ = [
    "METRICS",
    "Curve",
    "StudyData",
    "StudyNotFound",
    "TrialRow",
    "finite",
    "load_study_data",
    "study_data",
]

METRICS = (
    "base_accuracy",
    "compressed_accuracy",
    "accuracy_drop",
    "lambda_max",
    "train_time_s",
    "images_per_s",
    "sharpness_time_s",
    "n_params",
    "model_bytes",
    "params",
    "param_reduction",
    "latency_ms",
)
# The paper's names for the three configurations it compares (Sec. 5.1).
PAPER_NAMES = {("none", "adam"): "ADAM", ("none", "sam"): "SAM", ("snt", "adam"): "ARCH"}
# Compression-report keys usable as the x axis of an accuracy curve, in order of preference.
X_KEYS = (
    ("sparsity", "sparsity"),
    ("weight_bits", "weight bits"),
    ("keep_rate", "token keep rate"),
    ("merged_per_block", "tokens merged per block"),
)
_GROUP_PREFIX_KINDS = ("dataset", "backbone", "compressor")


class StudyNotFound(ValueError):
    """The storage holds no study of that name; the message lists those it holds."""


def finite(*values: float | None) -> bool:
    """True when every value is a finite number (``None``, NaN and inf are not)."""
    return all(v is not None and math.isfinite(v) for v in values)


@dataclass(frozen=True)
class Curve:
    """Accuracy at several compression levels: ``ys[i]`` measured at ``xs[i]`` (``x`` names the axis)."""

    x: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]


@dataclass(frozen=True)
class TrialRow:
    """One trial. ``plugins`` maps kind -> plugin name (from ``config``, else the params)."""

    number: int
    state: str
    values: tuple[float, ...] | None
    plugins: dict[str, str]
    group: str
    config: dict[str, Any] | None
    params: dict[str, Any]
    metrics: dict[str, float | None]
    compression: dict[str, Any]
    sharpness: dict[str, Any]
    curve: list[dict[str, Any]]
    sweep: Curve | None
    fail_reason: str | None
    duration_s: float | None
    on_front: bool = False
    surplus: str | None = None  # why the driver failed it unrun (see the module docstring)

    @property
    def status(self) -> str:
        """The state in lower case, ``surplus`` for a trial the driver failed unrun."""
        return "surplus" if self.surplus is not None else self.state.lower()

    def metric(self, name: str) -> float | None:
        return self.metrics.get(name)

    def compression_point(self) -> tuple[str, float] | None:
        """``(axis name, value)`` of what the compressor achieved, e.g. ``("sparsity", 0.5)``."""
        for key, label in X_KEYS:
            value = _number(self.compression.get(key))
            if finite(value):
                assert value is not None
                return label, value
        return None

    def record(self) -> dict[str, Any]:
        """A flat dict for CSV/JSON: number, state, group, plugins, metrics, fail reason."""
        out: dict[str, Any] = {"trial": self.number, "state": self.state, "group": self.group}
        out.update(self.plugins)
        out.update(self.metrics)
        point = self.compression_point()
        if point:
            out[point[0]] = point[1]
        out["on_front"] = self.on_front
        out["fail_reason"] = self.fail_reason
        out["surplus"] = self.surplus
        return out


@dataclass(frozen=True)
class StudyData:
    """Everything the report shows about one study."""

    name: str
    storage: str
    objectives: list[str]
    directions: list[str]
    attrs: dict[str, Any]
    trials: list[TrialRow] = field(default_factory=list)
    group_kinds: tuple[str, ...] = ("transform", "optimizer")

    @property
    def finished(self) -> list[TrialRow]:
        return [t for t in self.trials if t.state == "COMPLETE"]

    @property
    def failed(self) -> list[TrialRow]:
        """FAIL trials, surplus ones left out (see :attr:`surplus`)."""
        return [t for t in self.trials if t.state == "FAIL" and t.surplus is None]

    @property
    def surplus(self) -> list[TrialRow]:
        """FAIL trials the driver ended unrun: the study already had its trials."""
        return [t for t in self.trials if t.state == "FAIL" and t.surplus is not None]

    @property
    def front(self) -> list[TrialRow]:
        return [t for t in self.trials if t.on_front]

    def groups(self, rows: Iterable[TrialRow] | None = None) -> dict[str, list[TrialRow]]:
        """Rows by group, groups sorted by name (ADAM-like baselines first when present)."""
        out: dict[str, list[TrialRow]] = {}
        for row in self.finished if rows is None else rows:
            out.setdefault(row.group, []).append(row)
        return dict(sorted(out.items(), key=lambda kv: (not kv[0].startswith("none"), kv[0])))


def load_study_data(storage_url: str, study_name: str) -> StudyData:
    """Open ``storage_url`` and read ``study_name``; StudyNotFound lists the stored studies.

    A ``sqlite:///`` file that does not exist is an error too (opening it would create an
    empty database).
    """
    path = storage_url.removeprefix("sqlite:///") if storage_url.startswith("sqlite:///") else None
    if path and path != ":memory:" and not Path(path).exists():
        raise StudyNotFound(
            f"--storage {storage_url}: no such database file {path!r}; pass the storage "
            f"`snt-search study` wrote to (its default is {DEFAULT_STORAGE} in the folder it ran in)"
        )
    storage = open_storage(storage_url)
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    if study_name not in names:
        raise StudyNotFound(
            f"--study-name {study_name!r}: no such study in {storage_url}; studies there: "
            f"{', '.join(names) or '(none)'}. Fix: pass one of them, or --storage URL of the "
            f"storage `snt-search study` wrote to"
        )
    study = optuna.load_study(study_name=study_name, storage=storage)
    return study_data(study, storage_url)


def study_data(study: optuna.Study, storage_url: str = "") -> StudyData:
    """The tidy table of ``study`` (any Optuna study; missing attributes become ``None``)."""
    directions = [d.name.lower() for d in study.directions]
    objectives = objective_names(study)
    frozen = study.get_trials(deepcopy=False)
    plugins = [_plugins(t) for t in frozen]
    kinds = [k for k in _GROUP_PREFIX_KINDS if len({p.get(k) for p in plugins if p.get(k)}) > 1] + [
        "transform",
        "optimizer",
    ]
    front = {t.number for t in front_trials(frozen, study.directions)}
    rows = [
        _row(t, p, kinds, objectives, t.number in front)
        for t, p in zip(frozen, plugins, strict=True)
    ]
    return StudyData(
        name=study.study_name,
        storage=storage_url,
        objectives=objectives,
        directions=directions,
        attrs=dict(study.user_attrs),
        trials=rows,
        group_kinds=tuple(kinds),
    )


def group_label(plugins: dict[str, str], kinds: Sequence[str]) -> str:
    """``"snt + adam (ARCH)"``; kinds before transform/optimizer are prefixed: ``"resnet20 / ..."``."""
    prefix = " / ".join(plugins.get(k, "?") for k in kinds if k not in ("transform", "optimizer"))
    pair = (plugins.get("transform", "?"), plugins.get("optimizer", "?"))
    label = f"{pair[0]} + {pair[1]}"
    if pair in PAPER_NAMES:
        label += f" ({PAPER_NAMES[pair]})"
    return f"{prefix} / {label}" if prefix else label


def _plugins(t: optuna.trial.FrozenTrial) -> dict[str, str]:
    config = t.user_attrs.get("config")
    if isinstance(config, dict) and isinstance(config.get("plugins"), dict):
        return {str(k): str(v) for k, v in config["plugins"].items()}
    kinds = ("dataset", "backbone", "transform", "optimizer", "compressor")
    return {k: str(t.params[k]) for k in kinds if k in t.params}


def _row(
    t: optuna.trial.FrozenTrial,
    plugins: dict[str, str],
    kinds: list[str],
    objectives: list[str],
    on_front: bool,
) -> TrialRow:
    attrs = t.user_attrs
    metrics = {m: _number(attrs.get(m)) for m in METRICS}
    values = tuple(float(v) for v in t.values) if t.values is not None else None
    for name, value in zip(objectives, values or (), strict=False):
        if metrics.get(name) is None:
            metrics[name] = value
    duration = t.duration.total_seconds() if t.duration is not None else None
    config = attrs.get("config") if isinstance(attrs.get("config"), dict) else None
    compression = attrs.get("compression_report")
    sharpness = attrs.get("sharpness_report")
    curve = attrs.get("curve")
    return TrialRow(
        number=t.number,
        state=t.state.name,
        values=values,
        plugins=plugins,
        group=group_label(plugins, kinds),
        config=config,
        params=dict(t.params),
        metrics=metrics,
        compression=compression if isinstance(compression, dict) else {},
        sharpness=sharpness if isinstance(sharpness, dict) else {},
        curve=[c for c in curve if isinstance(c, dict)] if isinstance(curve, list) else [],
        sweep=_sweep(attrs.get("sweep_report"))
        or _sweep(attrs.get("sweep"))
        or _sweep((compression or {}).get("sweep")),
        fail_reason=str(attrs["fail_reason"]) if "fail_reason" in attrs else None,
        duration_s=duration,
        on_front=on_front,
        surplus=str(attrs["surplus"]) if "surplus" in attrs else None,
    )


def _sweep(value: Any) -> Curve | None:
    """A Curve from ``{"sparsities"|"bits"|"x": [...], "accuracies"|"y": [...]}``, else None."""
    if not isinstance(value, dict):
        return None
    ys = value.get("accuracies", value.get("y"))
    for key, label in (("sparsities", "sparsity"), ("bits", "weight bits"), ("x", "x")):
        xs = value.get(key)
        if isinstance(xs, list) and isinstance(ys, list) and len(xs) == len(ys) >= 2:
            pairs = [(_number(a), _number(b)) for a, b in zip(xs, ys, strict=True)]
            good = sorted((a, b) for a, b in pairs if a is not None and b is not None)
            if len(good) >= 2:
                name = str(value.get("x_name", label)) if key == "x" else label
                return Curve(name, tuple(a for a, _ in good), tuple(b for _, b in good))
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
