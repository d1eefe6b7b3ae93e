"""One trial's complete, plain configuration, and how a space samples it.

``TrialSpec`` is what the pipeline runs and what a user needs to re-run a trial: the chosen
plugin of each kind, their hyperparameters, the training and sharpness settings. ``sample``
turns a :class:`~snt_search.space.Space` and anything with Optuna's ``suggest_*`` methods into
one; a parameter of a plugin is only suggested when that plugin is chosen (define-by-run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .config import (
    LEGACY_FINETUNE,
    Budget,
    FinetuneConfig,
    SharpnessConfig,
    SweepConfig,
    TrainConfig,
    field_types,
)
from .space import Dimension, Space
from .specs import KINDS

__all__ = ["Suggester", "TrialSpec", "sample"]

_C = TypeVar("_C")


class Suggester(Protocol):
    """The part of ``optuna.trial.Trial`` a space needs."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...
    def suggest_float(
        self, name: str, low: float, high: float, *, step: Any = None, log: bool = False
    ) -> float: ...
    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...


@dataclass(frozen=True)
class TrialSpec:
    """Everything one trial runs with; ``as_dict`` is stored with the trial."""

    plugins: dict[str, str]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    sharpness: SharpnessConfig = field(default_factory=SharpnessConfig)
    budget: Budget = field(default_factory=Budget)
    sweep: SweepConfig | None = None
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    seed: int = 0
    seeds: int = 1  # runs of this configuration, seeds seed .. seed + seeds - 1 (repeats.py)
    data_dir: Path | None = None
    download: bool = True
    device: str = "cpu"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["data_dir"] = str(self.data_dir) if self.data_dir else None
        return out

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> TrialSpec:
        """The spec :meth:`as_dict` gave ``config`` (a trial's stored ``config`` attribute).

        Keys this snt-search does not know are ignored (a config from a newer version);
        a config without plugins is refused (ValueError naming what it has).
        """
        plugins = config.get("plugins")
        if not isinstance(plugins, Mapping) or not plugins:
            raise ValueError(
                f"a trial config needs 'plugins' (kind -> name), got keys {sorted(config)}; "
                "it is the 'config' user attribute a study stores with each trial"
            )
        sweep = config.get("sweep")
        data_dir = config.get("data_dir")
        return cls(
            plugins={str(k): str(v) for k, v in plugins.items()},
            params={k: dict(v) for k, v in (config.get("params") or {}).items()},
            train=_known(TrainConfig, config.get("train")),
            sharpness=_known(SharpnessConfig, config.get("sharpness")),
            budget=_known(Budget, config.get("budget")),
            sweep=None if sweep is None else _known(SweepConfig, sweep),
            # a config stored before [finetune] existed fine-tuned the legacy way
            finetune=_known(FinetuneConfig, config["finetune"])
            if "finetune" in config
            else LEGACY_FINETUNE,
            seed=int(config.get("seed", 0)),
            seeds=int(config.get("seeds", 1)),
            data_dir=Path(data_dir) if data_dir else None,
            download=bool(config.get("download", True)),
            device=str(config.get("device", "cpu")),
        )


def sample(
    space: Space,
    trial: Suggester,
    budget: Budget,
    *,
    data_dir: Path | None = None,
    download: bool = True,
    device: str = "cpu",
) -> TrialSpec:
    """Draw one :class:`TrialSpec` from ``space`` under ``budget``."""
    plugins = {
        kind: names[0] if len(names) == 1 else trial.suggest_categorical(kind, list(names))
        for kind, names in space.plugins.items()
    }
    params: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    train_values: dict[str, Any] = {"epochs": budget.epochs}
    if budget.batch_size is not None:
        train_values["batch_size"] = budget.batch_size
    for key, dim in space.params.items():
        parts = key.split(".")
        if parts[0] == "train":
            train_values[parts[1]] = _draw(trial, dim)
        elif plugins[parts[0]] == parts[1]:
            params[parts[0]][parts[2]] = _draw(trial, dim)
    if budget.finetune_epochs is not None:  # every compressor has it (Space.validate)
        params["compressor"]["finetune_epochs"] = budget.finetune_epochs
    sharp = space.sharpness
    if budget.sharpness_samples is not None:
        sharp = replace(sharp, samples=budget.sharpness_samples)
    if budget.sharpness_max_iter is not None:
        sharp = replace(sharp, max_iter=budget.sharpness_max_iter)
    return TrialSpec(
        plugins=plugins,
        params={k: v for k, v in params.items() if v},
        train=TrainConfig(**_coerce_train(train_values)),
        sharpness=sharp,
        budget=budget,
        sweep=space.sweep,
        finetune=space.finetune,
        seed=space.seed,
        seeds=space.seeds,
        data_dir=data_dir,
        download=download,
        device=device,
    )


def _known(cls: type[_C], values: Mapping[str, Any] | None) -> _C:
    """``cls(**values)`` with the keys ``cls`` has; lists become tuples (JSON has no tuple)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    kept = {
        k: tuple(v) if isinstance(v, list) else v for k, v in (values or {}).items() if k in names
    }
    return cls(**kept)


def _coerce_train(values: dict[str, Any]) -> dict[str, Any]:
    types = field_types(TrainConfig)
    return {
        k: float(v) if types[k] is float and isinstance(v, int) else v for k, v in values.items()
    }


def _draw(trial: Suggester, dim: Dimension) -> Any:
    if dim.fixed:
        return dim.value
    if dim.choices:
        return trial.suggest_categorical(dim.key, list(dim.choices))
    assert dim.low is not None and dim.high is not None
    if isinstance(dim.low, int) and isinstance(dim.high, int) and not isinstance(dim.step, float):
        return trial.suggest_int(dim.key, dim.low, dim.high, step=int(dim.step or 1), log=dim.log)
    return trial.suggest_float(dim.key, float(dim.low), float(dim.high), step=dim.step, log=dim.log)
