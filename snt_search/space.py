"""Study spaces: a TOML file saying what a study searches, how it scores, and its budgets.

Data flows one way: space file -> :class:`Space` -> (Optuna trial) -> :class:`TrialSpec`.
A space is validated twice: its shape when the file is read (``load_space``, the rules are in
:mod:`.space_file`), its plugin names
and parameter names against the installed plugins (``Space.check``). Every error names the
file, the key and what is allowed. See docs/spaces.md for the format.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Budget, SharpnessConfig, SweepConfig, TrainConfig, field_types
from .constraints import Constraint
from .early_stop import EarlyStop
from .registry import Registry
from .resources import TrialResources
from .samplers import FACTORIES

__all__ = ["METRICS", "SAMPLERS", "Dimension", "Space", "SpaceError", "load_space"]

SAMPLERS = tuple(FACTORIES)  # the names a space may give as [study] sampler
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
        from .space_file import parse_space  # the reader builds this class

        return parse_space(raw, self.path)

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
                if not fits_type(v, expected):
                    raise SpaceError(
                        f"{self.path}: [params] {key!r} takes {expected.__name__} values, got {v!r}"
                    )
                if dim.choices or dim.fixed:  # not range bounds: those are only limits
                    _check_train_value(key, v, self.path)
        return self


def load_space(path: str | Path) -> Space:
    """Read and validate the shape of a space file (plugins are checked by ``Space.check``)."""
    from .space_file import read_space  # the reader builds the classes above

    return read_space(Path(path))


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


def fits_type(value: Any, expected: type) -> bool:
    """Whether a TOML value fits a config field's type (an int is a float; a bool is neither)."""
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
