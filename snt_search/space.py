"""Study spaces: a TOML file saying what a study searches, how it scores, and its budgets.

Data flows one way: space file -> :class:`Space` -> (Optuna trial) -> :class:`TrialSpec`.
A space is validated twice: its shape when the file is read (``load_space``, the rules are in
:mod:`.space_file`), its plugin names
and parameter names against the installed plugins (``Space.check``). Every error names the
file, the key and what is allowed. See docs/spaces.md for the format.

Command-line overrides (``--set KEY=VALUE``, ``--dataset NAME``) go through
``Space.with_overrides``; the space remembers which option set which key (``origins``), so an
error about an override names that option, not the file. ``override_problem`` and
``param_problem`` are the same rules for commands that take ``--set`` without a space.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import (
    Budget,
    FinetuneConfig,
    SharpnessConfig,
    SweepConfig,
    TrainConfig,
    field_types,
)
from .constraints import Constraint
from .early_stop import EarlyStop
from .registry import Registry
from .resources import TrialResources
from .samplers import FACTORIES
from .specs import KINDS

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
    # the compressed model as stored and run (snt_search/measure.py)
    "model_bytes": "minimize",
    "params": "minimize",
    "param_reduction": "maximize",
    "latency_ms": "minimize",
}
# Beside these, a compressor's declared report keys (Compressor.metrics) are metrics of the
# spaces whose every candidate compressor declares them (space_file.space_metrics).


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
    finetune: FinetuneConfig = FinetuneConfig()  # [finetune]: how compressors fine-tune
    seeds: int = 1  # [study] seeds: each trial's configuration runs this many times
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    early_stop: EarlyStop | None = None  # [early_stop]: stop hopeless trials (early_stop.py)
    constraints: tuple[Constraint, ...] = ()  # [constraints]: bounds on metrics (constraints.py)
    resources: TrialResources = TrialResources()  # [resources]: per trial on Ray (resources.py)
    # [tracking]: tracker -> folder ("" = <out>/tensorboard), as --track / --track-dir
    tracking: dict[str, str] = field(default_factory=dict)
    # The command-line option that set a key ("--set train.lr=0.1", "--dataset digits"), by
    # param key or plugin kind: errors about that key name the option instead of the file.
    origins: dict[str, str] = field(repr=False, compare=False, default_factory=dict)
    # Warnings a study prints before it starts (e.g. [study] name differs from the file name).
    notes: tuple[str, ...] = field(repr=False, compare=False, default=())

    @property
    def fingerprint(self) -> str:
        """Hash of what the space searches; a resumed study must have been made from it."""
        keep = {
            k: self.raw.get(k) for k in ("objectives", "plugins", "params", "sharpness", "sweep")
        }
        if "finetune" in self.raw:  # absent: the hash of a space from before [finetune]
            keep["finetune"] = self.raw["finetune"]
        if self.seeds != 1:  # a mean over seeds is another measurement than one seed
            keep["seeds"] = self.seeds
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
        once ``--dataset digits`` is given). A malformed ``--set`` (see ``override_problem``)
        raises :class:`SpaceError` naming that ``--set``; names and values are checked by
        ``check``, whose errors name the option that set them."""
        chosen = {**self.plugins, **{kind: (name,) for kind, name in plugins.items()}}
        origins = {**self.origins, **{kind: f"--{kind} {name}" for kind, name in plugins.items()}}
        for key, value in overrides.items():
            problem = override_problem(key, value, chosen)
            if problem is not None:
                raise SpaceError(f"{set_option(key, value)}: {problem}")
            origins[key] = set_option(key, value)
        raw = json.loads(json.dumps(self.raw, default=str))
        raw.setdefault("plugins", {}).update(plugins)
        params = raw.setdefault("params", {})
        for key in list(params):
            kind, _, rest = key.partition(".")
            if kind in plugins and rest.split(".")[0] != plugins[kind]:
                del params[key]
        params.update(overrides)
        from .space_file import parse_space  # the reader builds this class

        return replace(parse_space(raw, self.path), origins=origins)

    def check(self, registry: Registry) -> Space:
        """Check plugin names and parameter names/types against the installed plugins.

        A name whose plugin is installed but broken (its import failed) is reported with that
        plugin's own error and the fix, as ``snt-search plugins`` lists it."""
        for kind, names in self.plugins.items():
            for name in names:
                problem = _plugin_problem(registry, kind, name)
                if problem is not None:
                    raise SpaceError(f"{self._at(kind)} {kind} = {name!r} {problem}")
        if self.sweep is not None:
            problem = _plugin_problem(registry, "compressor", self.sweep.compressor)
            if problem is not None:
                raise SpaceError(
                    f"{self.path}: [sweep] compressor = {self.sweep.compressor!r} {problem}"
                )
            if "sparsity" not in registry.get("compressor", self.sweep.compressor).defaults:
                raise SpaceError(
                    f"{self.path}: [sweep] compressor {self.sweep.compressor!r} has no 'sparsity' "
                    f"parameter; sweep a pruning compressor such as 'magnitude_prune' or 'imp'"
                )
        self._check_finetune(registry)
        for key, dim in self.params.items():
            values = dim.choices or ((dim.value,) if dim.fixed else (dim.low, dim.high))
            for v in values:  # range bounds are only limits: their type is all that counts
                problem = param_problem(key, v, registry, bound=not (dim.choices or dim.fixed))
                if problem is not None:
                    raise SpaceError(f"{self._at(key)} {problem}")
        return self

    def _check_finetune(self, registry: Registry) -> None:
        """[finetune] optimizer is installed; a budget's finetune_epochs reaches a parameter."""
        name = self.finetune.optimizer
        if name != "trial":
            problem = _plugin_problem(registry, "optimizer", name)
            if problem is not None:
                raise SpaceError(
                    f"{self.path}: [finetune] optimizer = {name!r} {problem}; or write "
                    f"'trial' to fine-tune with the trial's own optimizer"
                )
        for budget in self.budgets.values():
            if budget.finetune_epochs is None:
                continue
            for compressor in self.plugins.get("compressor", ()):
                if "finetune_epochs" not in registry.get("compressor", compressor).defaults:
                    raise SpaceError(
                        f"{self.path}: [budgets.{budget.name}] finetune_epochs sets the "
                        f"compressors' finetune_epochs, but compressor {compressor!r} has no "
                        f"such parameter; remove the key or set the compressor's own "
                        f"parameter in [params]"
                    )

    def _at(self, key: str) -> str:
        """How an error about ``key`` (a param key or a plugin kind) starts: the command-line
        option that set it, or the file and section."""
        if key in self.origins:
            return f"{self.origins[key]}:"
        return f"{self.path}: [plugins]" if "." not in key else f"{self.path}: [params] {key!r}:"


def load_space(path: str | Path) -> Space:
    """Read and validate the shape of a space file (plugins are checked by ``Space.check``)."""
    from .space_file import read_space  # the reader builds the classes above

    return read_space(Path(path))


def set_option(key: str, value: Any) -> str:
    """``--set KEY=VALUE`` as a user would type it (TOML value syntax), for error messages."""
    return f"--set {key}={json.dumps(value, default=str)}"


def override_problem(key: str, value: Any, chosen: Mapping[str, Sequence[str]]) -> str | None:
    """What is wrong with the shape of ``--set key=value`` given the plugins ``chosen`` per
    kind, with the fix; ``None`` when it is well formed (names are checked by
    ``param_problem``)."""
    parts = key.split(".")
    if not all(parts) or not (
        (parts[0] == "train" and len(parts) == 2) or (parts[0] in KINDS and len(parts) == 3)
    ):
        return (
            f"KEY must be train.<field> or <kind>.<plugin>.<param> (kinds: {', '.join(KINDS)}), "
            f"e.g. --set train.lr=0.001 or --set optimizer.sam.rho=0.1"
        )
    names = list(chosen.get(parts[0], ()))
    if parts[0] in KINDS and parts[1] not in names:
        return (
            f"{parts[0]} {parts[1]!r} is not among the chosen {parts[0]}s "
            f"({', '.join(names) or 'none'}){did_you_mean(parts[1], names)}; set a parameter of "
            f"a chosen plugin"
        )
    if isinstance(value, dict):
        return (
            "a range or a list of choices cannot be given on the command line (--set fixes one "
            "value); put it in the space file's [params], e.g. "
            '"train.lr" = { low = 1e-4, high = 1e-2, log = true }'
        )
    return None


def param_problem(key: str, value: Any, registry: Registry, *, bound: bool = False) -> str | None:
    """What is wrong with setting the well-formed ``key`` to ``value``, with what is allowed;
    ``None`` when nothing is. ``bound``: ``value`` is a bound of a range (a sampler may draw
    it, so the value rules apply to it as well; only a log range's bounds are checked by Optuna)."""
    parts = key.split(".")
    if parts[0] == "train":
        types = field_types(TrainConfig)
        if parts[1] not in types:
            return (
                f"train has no field {parts[1]!r}; fields: {', '.join(types)}"
                f"{did_you_mean(parts[1], types)}"
            )
        expected, default = types[parts[1]], getattr(TrainConfig(), parts[1])
    else:
        kind, name, param = parts
        defaults = registry.get(kind, name).defaults
        if param not in defaults:
            known = ", ".join(sorted(defaults)) or "(none)"
            return (
                f"{kind} {name!r} has no parameter {param!r}; it accepts: {known}"
                f"{did_you_mean(param, defaults)}"
            )
        expected, default = type(defaults[param]), defaults[param]
    if not fits_type(value, expected):
        return f"takes {expected.__name__} values (like its default {default!r}), got {value!r}"
    # A range's bounds can be drawn, so they obey the same rules as a fixed value.
    if parts[0] == "train":
        try:
            TrainConfig(**{parts[1]: value})  # its own rules, e.g. lr > 0, precision's choices
        except ValueError as exc:
            return str(exc)
        return None
    return registry.get(parts[0], parts[1]).range_problem(parts[2], value)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options`` to a misspelt ``word``, or ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _plugin_problem(registry: Registry, kind: str, name: str) -> str | None:
    """Why ``name`` cannot be used as a ``kind`` (its import error if broken), or ``None``."""
    if registry.has(kind, name):
        return None
    broken = registry.why_broken(kind, name)
    if broken is not None:
        return f"is installed but broken: {broken}"
    available = registry.names(kind)
    return (
        f"is not an installed {kind}{did_you_mean(name, available)}; "
        f"available: {', '.join(available) or '(none)'}"
    )


def fits_type(value: Any, expected: type) -> bool:
    """Whether a TOML value fits a config field's type (an int is a float; a bool is neither)."""
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
