"""Reading a study space file: TOML -> :class:`~snt_search.space.Space`, every rule checked.

Each error is a :class:`~snt_search.space.SpaceError` naming the file, the section or key, what
is allowed and the value found. Plugin and parameter names are checked later, against the
installed plugins, by ``Space.check``. See docs/spaces.md for the format.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import Budget, FinetuneConfig, SharpnessConfig, SweepConfig, field_types
from .constraints import parse_constraints
from .early_stop import parse_early_stop
from .resources import TrialResources
from .space import METRICS, SAMPLERS, Dimension, Space, SpaceError, did_you_mean, fits_type
from .specs import KINDS
from .trackers import TRACKERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["parse_space", "read_space"]

_SECTIONS = {"study", "objectives", "plugins", "params", "sharpness", "budgets", "sweep"}
_SECTIONS |= {"finetune"}  # how compressors fine-tune (config.FinetuneConfig)
_SECTIONS |= {"tracking"}  # trackers every run of the space writes to (trackers.py)
_SECTIONS |= {"early_stop", "constraints"}  # see early_stop.py and constraints.py
_SECTIONS |= {"resources"}  # per-trial CPUs/GPUs on Ray, see resources.py
_STUDY_KEYS = (
    "name",
    "description",
    "sampler",
    "seed",
    "seeds",
)  # [study], as every section: no others


def read_space(path: Path) -> Space:
    """Parse ``path`` into a :class:`Space`; raise :class:`SpaceError` on any broken rule."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"study space file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpaceError(f"{path}: not valid TOML: {exc}") from exc
    return parse_space(raw, path)


def parse_space(raw: dict[str, Any], path: Path) -> Space:
    """The :class:`Space` a parsed TOML document describes (``path`` names it in errors)."""

    def fail(msg: str) -> SpaceError:
        return SpaceError(f"{path}: {msg}")

    unknown = sorted(set(raw) - _SECTIONS)
    if unknown:
        raise fail(f"unknown section [{unknown[0]}]; sections are: {', '.join(sorted(_SECTIONS))}")
    study = _table(raw, "study", path)
    for key in study:
        if key not in _STUDY_KEYS:
            raise fail(
                f"[study] unknown key {key!r}{did_you_mean(key, _STUDY_KEYS)}; "
                f"allowed: {', '.join(_STUDY_KEYS)}"
            )
    for key in ("name", "description"):
        if not isinstance(study.get(key, ""), str):
            raise fail(f"[study] {key} must be a string, got {study[key]!r}")
    sampler = study.get("sampler", None)
    if sampler not in SAMPLERS:
        raise fail(
            f"[study] sampler must be named explicitly, one of {', '.join(SAMPLERS)}; got {sampler!r}"
        )
    seed = study.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise fail(f"[study] seed must be an integer, got {seed!r}")
    seeds = study.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise fail(
            f"[study] seeds must be an integer >= 1 (runs per trial, scored by their mean), "
            f"got {seeds!r}"
        )

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

    objectives = _table(raw, "objectives", path)
    wanted = {*objectives, *(raw.get("constraints") or {})} - set(METRICS)
    metrics = space_metrics(plugins["compressor"], fail) if wanted else dict(METRICS)
    if not objectives:
        raise fail(f"[objectives] needs at least one metric; metrics are: {', '.join(metrics)}")
    for metric, direction in objectives.items():
        if metric not in metrics:
            raise fail(
                f"[objectives] unknown metric {metric!r}; metrics are: {', '.join(metrics)} "
                "(a compressor's report key is one when every [plugins] compressor declares "
                "it in Compressor.metrics)"
            )
        if direction not in ("minimize", "maximize"):
            raise fail(f"[objectives] {metric} must be 'minimize' or 'maximize', got {direction!r}")

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
    finetune = _dataclass(FinetuneConfig, _table(raw, "finetune", path), "[finetune]", fail)
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
        notes=_name_notes(study, path),
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
        finetune=finetune,
        seeds=seeds,
        raw=raw,
        early_stop=parse_early_stop(raw.get("early_stop"), fail),
        constraints=parse_constraints(raw.get("constraints"), metrics, fail),
        resources=_resources(raw, path, fail),
        tracking=_tracking(raw, path, fail),
    )


def space_metrics(compressors: tuple[str, ...], fail: Callable[[str], Exception]) -> dict[str, str]:
    """:data:`METRICS` plus the report keys every one of ``compressors`` declares as metrics
    (``Compressor.metrics``; a key only some declare would be missing from some trials).
    Loads the plugin registry, so only called when a space names a metric beyond METRICS."""
    from .registry import get_registry

    registry = get_registry()
    declared: list[dict[str, str]] = []
    for name in compressors:
        try:
            declared.append(dict(getattr(registry.get("compressor", name), "metrics", {})))
        except Exception as exc:
            raise fail(f"[plugins] compressor {name!r}: {exc}") from None
    common = {k: v for k, v in declared[0].items() if all(k in d for d in declared[1:])}
    return dict(METRICS) | common


def _name_notes(study: dict[str, Any], path: Path) -> tuple[str, ...]:
    """A warning when ``[study] name`` differs from the file name, which names the space."""
    name = study.get("name", path.stem)
    if name == path.stem:
        return ()
    return (
        f"{path}: [study] name = {name!r} differs from the file name {path.stem!r}: "
        f"`snt-search spaces` and `--space` call this space {path.stem!r} (a space is named "
        f"by its file), while its studies are stored as {name!r} unless --study-name is given. "
        f"Fix: rename the file to {name}.toml, or set name = {path.stem!r} (or drop it)",
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


def _tracking(raw: dict[str, Any], path: Path, fail: Any) -> dict[str, str]:
    """``[tracking] tensorboard = true`` (or a folder): tracker name -> folder ("" = default)."""
    out = {}
    for name, value in _table(raw, "tracking", path).items():
        if name not in TRACKERS:
            raise fail(f"[tracking] unknown tracker {name!r}; trackers: {', '.join(TRACKERS)}")
        if value is False:
            continue
        if value is not True and not (isinstance(value, str) and value):
            raise fail(
                f"[tracking] {name} must be true or a folder to write to, got {value!r}; "
                f'e.g. {name} = true or {name} = "runs/tb"'
            )
        out[name] = "" if value is True else value
    return out


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
        if value is not None and expected is not type(None) and not fits_type(value, expected):
            raise fail(f"{where} {key} must be {expected.__name__}, got {value!r}")
    try:
        return cls(**values)
    except ValueError as exc:  # a value the class refuses (e.g. an unknown schedule)
        raise fail(f"{where} {exc}") from exc
