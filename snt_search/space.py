"""Study spaces: a TOML file saying what a study searches, how it scores, and its budgets.

Data flows one way: space file -> :class:`Space` -> (Optuna trial) -> :class:`TrialSpec`.
A space is validated twice: its shape when the file is read (``load_space``), its plugin names
and parameter names against the installed plugins (``Space.check``). Every error names the
file, the key and what is allowed. See docs/spaces.md for the format.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Budget, SharpnessConfig, SweepConfig, TrainConfig, field_types
from .constraints import Constraint, parse_constraints
from .early_stop import EarlyStop, parse_early_stop
from .registry import Registry
from .resources import TrialResources
from .specs import KINDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["METRICS", "SAMPLERS", "Dimension", "Space", "SpaceError", "load_space"]

SAMPLERS = ("nsga2", "tpe", "random", "gp")
METRICS = {
    "lambda_max": "minimize",
    "accuracy_drop": "minimize",
    "base_accuracy": "maximize",
    "compressed_accuracy": "maximize",
    "train_time_s": "minimize",
    "sweep_auc": "maximize",  # these three need a [sweep] section
    "sweep_mean_accuracy": "maximize",
    "sweep_accuracy_drop": "minimize",
}
_SECTIONS = {"study", "objectives", "plugins", "params", "sharpness", "budgets", "sweep"}
_SECTIONS |= {"early_stop", "constraints"}  # see early_stop.py and constraints.py
_SECTIONS |= {"resources"}  # per-trial CPUs/GPUs on Ray, see resources.py


class SpaceError(ValueError):
    """A study space file breaks a rule; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Dimension:
    """One parameter: a fixed value, a categorical choice, or a numeric range."""

    key: str
    value: Any = None
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def fixed(self) -> bool:
        return not self.choices and self.low is None


@dataclass(frozen=True)
class Space:
    """A parsed study space; ``plugins[kind]`` holds the candidate names of each kind."""

    name: str
    path: Path
    description: str
    sampler: str
    seed: int
    objectives: dict[str, str]
    plugins: dict[str, tuple[str, ...]]
    params: dict[str, Dimension]
    sharpness: SharpnessConfig
    budgets: dict[str, Budget]
    sweep: SweepConfig | None = None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    early_stop: EarlyStop | None = None  # [early_stop]: stop hopeless trials (early_stop.py)
    constraints: tuple[Constraint, ...] = ()  # [constraints]: bounds on metrics (constraints.py)
    resources: TrialResources = TrialResources()  # [resources]: per trial on Ray (resources.py)

    @property
    def fingerprint(self) -> str:
        """Hash of what the space searches; a resumed study must have been made from it."""
        keep = {
            k: self.raw.get(k) for k in ("objectives", "plugins", "params", "sharpness", "sweep")
        }
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise SpaceError(
                f"{self.path}: no budget {name!r}; this space defines: {', '.join(self.budgets)}"
            )
        return self.budgets[name]

    def with_overrides(self, plugins: Mapping[str, str], overrides: Mapping[str, Any]) -> Space:
        """A copy with plugin choices fixed (``--dataset digits``) and params set (``--set``).

        Parameters of plugins a fixed choice leaves out are dropped (``dataset.cifar10.*``
        once ``--dataset digits`` is given)."""
        raw = json.loads(json.dumps(self.raw, default=str))
        raw.setdefault("plugins", {}).update(plugins)
        params = raw.setdefault("params", {})
        for key in list(params):
            kind, _, rest = key.partition(".")
            if kind in plugins and rest.split(".")[0] != plugins[kind]:
                del params[key]
        params.update(overrides)
        return _parse(raw, self.path)

    def check(self, registry: Registry) -> Space:
        """Check plugin names and parameter names/types against the installed plugins."""
        for kind, names in self.plugins.items():
            for name in names:
                if not registry.has(kind, name):
                    raise SpaceError(
                        f"{self.path}: [plugins] {kind} = {name!r} is not an installed {kind}; "
                        f"available: {', '.join(registry.names(kind)) or '(none)'}"
                    )
        if self.sweep is not None:
            if self.sweep.compressor not in registry.names("compressor"):
                raise SpaceError(
                    f"{self.path}: [sweep] compressor {self.sweep.compressor!r} is not installed; "
                    f"available: {', '.join(registry.names('compressor'))}"
                )
            if "sparsity" not in registry.get("compressor", self.sweep.compressor).defaults:
                raise SpaceError(
                    f"{self.path}: [sweep] compressor {self.sweep.compressor!r} has no 'sparsity' "
                    f"parameter; sweep a pruning compressor such as 'magnitude_prune' or 'imp'"
                )
        for key, dim in self.params.items():
            expected = _param_type(key, self, registry)
            values = dim.choices or ((dim.value,) if dim.fixed else (dim.low, dim.high))
            for v in values:
                if not _fits(v, expected):
                    raise SpaceError(
                        f"{self.path}: [params] {key!r} takes {expected.__name__} values, got {v!r}"
                    )
                if dim.choices or dim.fixed:  # not range bounds: those are only limits
                    _check_train_value(key, v, self.path)
        return self


def load_space(path: str | Path) -> Space:
    """Read and validate the shape of a space file (plugins are checked by ``Space.check``)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"study space file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpaceError(f"{path}: not valid TOML: {exc}") from exc
    return _parse(raw, path)


def _parse(raw: dict[str, Any], path: Path) -> Space:
    def fail(msg: str) -> SpaceError:
        return SpaceError(f"{path}: {msg}")

    unknown = sorted(set(raw) - _SECTIONS)
    if unknown:
        raise fail(f"unknown section [{unknown[0]}]; sections are: {', '.join(sorted(_SECTIONS))}")
    study = _table(raw, "study", path)
    sampler = study.get("sampler", None)
    if sampler not in SAMPLERS:
        raise fail(
            f"[study] sampler must be named explicitly, one of {', '.join(SAMPLERS)}; got {sampler!r}"
        )
    seed = study.get("seed", 0)
    if not isinstance(seed, int):
        raise fail(f"[study] seed must be an integer, got {seed!r}")

    objectives = _table(raw, "objectives", path)
    if not objectives:
        raise fail(f"[objectives] needs at least one metric; metrics are: {', '.join(METRICS)}")
    for metric, direction in objectives.items():
        if metric not in METRICS:
            raise fail(f"[objectives] unknown metric {metric!r}; metrics are: {', '.join(METRICS)}")
        if direction not in ("minimize", "maximize"):
            raise fail(f"[objectives] {metric} must be 'minimize' or 'maximize', got {direction!r}")

    plugins: dict[str, tuple[str, ...]] = {}
    for kind, value in _table(raw, "plugins", path).items():
        if kind not in KINDS:
            raise fail(f"[plugins] unknown kind {kind!r}; kinds are: {', '.join(KINDS)}")
        names = tuple(value) if isinstance(value, list) else (value,)
        if not names or not all(isinstance(n, str) for n in names):
            raise fail(f"[plugins] {kind} must be a plugin name or a list of names, got {value!r}")
        plugins[kind] = names
    missing = [k for k in KINDS if k not in plugins]
    if missing:
        raise fail(f"[plugins] must name a {missing[0]} (a name or a list of names to search)")

    params = {
        key: _dimension(key, value, fail) for key, value in _table(raw, "params", path).items()
    }
    for key in params:
        parts = key.split(".")
        if parts[0] in KINDS and len(parts) == 3 and parts[1] not in plugins[parts[0]]:
            raise fail(
                f"[params] {key!r} sets a parameter of {parts[0]} {parts[1]!r}, which is not among "
                f"[plugins] {parts[0]} = {list(plugins[parts[0]])}"
            )

    sharpness = _dataclass(SharpnessConfig, _table(raw, "sharpness", path), "[sharpness]", fail)
    sweep = _sweep(raw, path, fail)
    needs_sweep = sorted(m for m in objectives if m.startswith("sweep_"))
    if needs_sweep and sweep is None:
        raise fail(
            f"[objectives] {needs_sweep[0]} needs a [sweep] section (compressor, sparsities)"
        )
    budgets_raw = _table(raw, "budgets", path)
    if not budgets_raw:
        raise fail("[budgets] needs at least one budget, e.g. [budgets.smoke] epochs = 1")
    budgets = {}
    for name, table in budgets_raw.items():
        if not isinstance(table, dict):
            raise fail(f"[budgets.{name}] must be a table, got {table!r}")
        budgets[name] = _dataclass(Budget, {"name": name, **table}, f"[budgets.{name}]", fail)
    return Space(
        name=str(study.get("name", path.stem)),
        path=path,
        description=str(study.get("description", "")),
        sampler=sampler,
        seed=seed,
        objectives=dict(objectives),
        plugins=plugins,
        params=params,
        sharpness=sharpness,
        budgets=budgets,
        sweep=sweep,
        raw=raw,
        early_stop=parse_early_stop(raw.get("early_stop"), fail),
        constraints=parse_constraints(raw.get("constraints"), METRICS, fail),
        resources=_resources(raw, path, fail),
    )


def _resources(raw: dict[str, Any], path: Path, fail: Any) -> TrialResources:
    try:
        resources: TrialResources = _dataclass(
            TrialResources, _table(raw, "resources", path), "[resources]", fail
        )
    except SpaceError:
        raise
    except ValueError as exc:  # a rule of TrialResources; add the file to its message
        raise fail(str(exc)) from None
    return resources


def _sweep(raw: dict[str, Any], path: Path, fail: Any) -> SweepConfig | None:
    if "sweep" not in raw:
        return None
    table = dict(_table(raw, "sweep", path))
    extra = sorted(set(table) - {"compressor", "sparsities"})
    if extra:
        raise fail(f"[sweep] unknown key {extra[0]!r}; allowed: compressor, sparsities")
    values = table.get("sparsities", list(SweepConfig.sparsities))
    ok = isinstance(values, list) and len(values) >= 2
    if not ok or not all(isinstance(v, int | float) and 0 <= v < 1 for v in values):
        raise fail(f"[sweep] sparsities must be a list of >= 2 numbers in [0, 1), got {values!r}")
    if not isinstance(table.get("compressor", "magnitude_prune"), str):
        raise fail(f"[sweep] compressor must be a plugin name, got {table['compressor']!r}")
    return SweepConfig(
        str(table.get("compressor", "magnitude_prune")), tuple(float(v) for v in values)
    )


def _table(raw: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise SpaceError(f"{path}: [{name}] must be a table, got {value!r}")
    return value


def _dimension(key: str, value: Any, fail: Any) -> Dimension:
    parts = key.split(".")
    valid = (parts[0] in KINDS and len(parts) == 3) or (parts[0] == "train" and len(parts) == 2)
    if not valid:
        raise fail(
            f"[params] key {key!r} must be 'train.<field>' or '<kind>.<plugin>.<param>' "
            f"(e.g. 'optimizer.sam.rho')"
        )
    if not isinstance(value, dict):
        return Dimension(key, value=value)
    allowed = {"choices", "low", "high", "log", "step"}
    extra = sorted(set(value) - allowed)
    if extra:
        raise fail(
            f"[params] {key}: unknown field {extra[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )
    if "choices" in value:
        choices = value["choices"]
        if not isinstance(choices, list) or not choices or len(value) > 1:
            raise fail(f"[params] {key}: choices must be a non-empty list and stand alone")
        return Dimension(key, choices=tuple(choices))
    low, high = value.get("low"), value.get("high")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        raise fail(f"[params] {key}: a range needs numeric low and high, got {value!r}")
    assert low is not None and high is not None
    if low >= high:
        raise fail(f"[params] {key}: low must be < high, got low={low} high={high}")
    log = bool(value.get("log", False))
    if log and low <= 0:
        raise fail(f"[params] {key}: log ranges need low > 0, got {low}")
    return Dimension(key, low=low, high=high, log=log, step=value.get("step"))


def _dataclass(cls: Any, values: dict[str, Any], where: str, fail: Any) -> Any:
    types = field_types(cls)
    for key, value in values.items():
        if key not in types:
            raise fail(f"{where} unknown key {key!r}; allowed: {', '.join(types)}")
        expected = types[key]
        if value is not None and expected is not type(None) and not _fits(value, expected):
            raise fail(f"{where} {key} must be {expected.__name__}, got {value!r}")
    return cls(**values)


def _param_type(key: str, space: Space, registry: Registry) -> type:
    parts = key.split(".")
    if parts[0] == "train":
        types = field_types(TrainConfig)
        if parts[1] not in types:
            raise SpaceError(
                f"{space.path}: [params] {key!r}: train has no field {parts[1]!r}; fields: {', '.join(types)}"
            )
        return types[parts[1]]
    kind, name, param = parts
    defaults = registry.get(kind, name).defaults
    if param not in defaults:
        known = ", ".join(sorted(defaults)) or "(none)"
        raise SpaceError(
            f"{space.path}: [params] {key!r}: {kind} {name!r} has no parameter {param!r}; it accepts: {known}"
        )
    return type(defaults[param])


def _check_train_value(key: str, value: Any, path: Path) -> None:
    """The value passes ``TrainConfig``'s own checks (e.g. ``train.precision`` choices)."""
    field = key.split(".", 1)[1] if key.startswith("train.") else None
    if field is None:
        return
    try:
        TrainConfig(**{field: value})
    except ValueError as exc:
        raise SpaceError(f"{path}: [params] {key!r}: {exc}") from None


def _fits(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
