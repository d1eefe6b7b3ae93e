"""Finding, loading and validating plugins, in flake8's three visible steps.

1. *find*: read the entry points of the groups ``snt_search.<kind>s`` (imports nothing);
2. *load*: ``ep.load()`` each one; an import error marks that plugin broken, not the program;
3. *validate*: the object must be a concrete subclass of its kind's base (``snt_search.specs``)
   that instantiates with no arguments, and its name must not already be taken.

Built-in plugins (distribution ``snt-search``) go through the same path as a third party's.
A broken plugin is kept as a :class:`PluginRecord` with ``error`` set to ``dist[entry]: cause``
and listed by ``snt-search plugins``; ``strict=True`` raises instead. Asking for a broken
plugin by name (``get``, a space's ``[plugins]``) reports its cause and the fix
(``Registry.why_broken``), never a bare "not installed"; a plugin whose name is taken
(``taken_by``) is also a note at the start of a study (``Registry.notes``). Setting the environment
variable ``SNT_SEARCH_DISABLE_PLUGIN_AUTOLOAD=1`` loads built-ins only (as pytest's
``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), which is the way out when a third-party plugin misbehaves.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal, overload

from .plugin_notes import clash_notes
from .specs import KINDS, Plugin, PluginError

if TYPE_CHECKING:
    from .specs import Backbone, Compressor, Dataset, Optimizer, Transform

__all__ = [
    "AUTOLOAD_ENV",
    "BUILTIN_DIST",
    "PluginRecord",
    "Registry",
    "get_registry",
    "reset_registry",
]

AUTOLOAD_ENV = "SNT_SEARCH_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_DIST = "snt-search"


def group(kind: str) -> str:
    """The entry-point group of a plugin kind, e.g. ``snt_search.backbones``."""
    return f"snt_search.{kind}s"


@dataclass(frozen=True)
class PluginRecord:
    """One entry point, loaded or broken."""

    kind: str
    name: str
    dist: str
    version: str
    value: str
    plugin: type[Plugin] | None = None
    error: str | None = None
    taken_by: str | None = None  # its name clashes: the ``dist[entry]`` that keeps the name

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def builtin(self) -> bool:
        return self.dist == BUILTIN_DIST

    @property
    def origin(self) -> str:
        return f"{self.dist} {self.version}"

    @property
    def label(self) -> str:
        """``dist[entry]``, the way failures name a plugin."""
        return f"{self.dist}[{self.name}]"

    @property
    def summary(self) -> str:
        return self.plugin.summary() if self.plugin is not None else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "dist": self.dist,
            "version": self.version,
            "entry_point": self.value,
            "builtin": self.builtin,
            "summary": self.summary,
            "defaults": dict(self.plugin.defaults) if self.plugin is not None else {},
            "error": self.error,
        }


@dataclass
class Registry:
    """All plugins known to this process, by kind and name."""

    records: list[PluginRecord] = field(default_factory=list)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def discover(cls, *, autoload: bool | None = None) -> Registry:
        """Find, load and validate every installed plugin (see the module docstring)."""
        if autoload is None:
            autoload = os.environ.get(AUTOLOAD_ENV, "").strip().lower() in ("", "0", "false", "no")
        registry = cls()
        for kind in KINDS:
            for ep in _find(kind):
                dist, version = _dist_of(ep)
                if not autoload and dist != BUILTIN_DIST:
                    continue
                registry._add(kind, ep.name, dist, version, ep.value, loader=ep.load)
        return registry

    def register(
        self, kind: str, name: str, plugin: Any, *, dist: str = "__main__"
    ) -> PluginRecord:
        """Register a plugin class in this process only (notebooks, tests); validated as above."""
        record = self._add(
            kind, name, dist, "", f"{getattr(plugin, '__module__', '?')}", loader=lambda: plugin
        )
        if record.error is not None:
            raise PluginError(record.error)
        return record

    def _add(
        self, kind: str, name: str, dist: str, version: str, value: str, *, loader: Any
    ) -> PluginRecord:
        label = f"{dist}[{name}]"
        error: str | None = None
        plugin: type[Plugin] | None = None
        try:
            obj = loader()
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin's import is its own
            error = f"{label}: failed to import {value}: {type(exc).__name__}: {exc}"
        else:
            error = _validate(kind, label, obj)
            if error is None:
                plugin = obj
        taken = self._find_ok(kind, name) if error is None else None
        if taken is not None:
            error = f"{label}: duplicate {kind} name {name!r}, already provided by {taken.label}"
            plugin = None
        by = taken.label if taken else None
        record = PluginRecord(kind, name, dist, version, value, plugin, error, by)
        self.records.append(record)
        return record

    # -- querying ---------------------------------------------------------------------------
    def _find_ok(self, kind: str, name: str) -> PluginRecord | None:
        return next((r for r in self.records if r.kind == kind and r.name == name and r.ok), None)

    def names(self, kind: str) -> list[str]:
        """Names of the working plugins of ``kind``, sorted."""
        return sorted(r.name for r in self.records if r.kind == kind and r.ok)

    def broken(self) -> list[PluginRecord]:
        return [r for r in self.records if not r.ok]

    def notes(self, used: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """What a study should say before it starts: one line per plugin whose name is taken
        by another (it is BROKEN and the name runs the other one); those that ``used``
        (``Space.plugins``: kind -> names) asks for come first. See :mod:`.plugin_notes`."""
        return clash_notes(self.records, used or {})

    def __iter__(self) -> Iterator[PluginRecord]:
        return iter(self.records)

    def check(self, strict: bool) -> None:
        """With ``strict``, raise if any plugin is broken (``--strict`` on the command line)."""
        bad = self.broken()
        if strict and bad:
            lines = "\n  ".join(r.error or "" for r in bad)
            raise PluginError(
                f"{len(bad)} broken plugin(s) and --strict is set:\n  {lines}\n"
                f"Fix or uninstall them, or set {AUTOLOAD_ENV}=1 to load built-ins only."
            )

    @overload
    def get(self, kind: Literal["dataset"], name: str) -> Dataset: ...
    @overload
    def get(self, kind: Literal["backbone"], name: str) -> Backbone: ...
    @overload
    def get(self, kind: Literal["transform"], name: str) -> Transform: ...
    @overload
    def get(self, kind: Literal["optimizer"], name: str) -> Optimizer: ...
    @overload
    def get(self, kind: Literal["compressor"], name: str) -> Compressor: ...
    @overload
    def get(self, kind: str, name: str) -> Plugin: ...

    def get(self, kind: str, name: str) -> Plugin:
        """A fresh instance of plugin ``name`` of ``kind``; errors list what exists.

        Typed by kind (``get("backbone", ...)`` is a :class:`~snt_search.specs.Backbone`):
        every plugin class is checked to subclass its kind's base when it is loaded."""
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds are: {', '.join(KINDS)}")
        record = self._find_ok(kind, name)
        if record is None and ":" in name:
            return self._with_argument(kind, name)
        if record is None or record.plugin is None:
            broken = self.why_broken(kind, name)
            if broken is not None:
                raise PluginError(f"{kind} {name!r} is installed but broken: {broken}")
            available = ", ".join(self.names(kind)) or "(none)"
            raise PluginError(
                f"no {kind} named {name!r}; available: {available}. "
                f"Run `snt-search plugins` to list every plugin."
            )
        instance = record.plugin()
        instance.name = name
        return instance

    def why_broken(self, kind: str, name: str) -> str | None:
        """Why plugin ``name`` of ``kind`` (or the base of ``base:argument``) is installed but
        unusable: its own error (``dist[entry]: cause``) and the fix; ``None`` when no working
        plugin has that name and no broken one does either, or when a working one does."""
        if not any(r.kind == kind and r.name == name for r in self.records):
            name = name.partition(":")[0]
        if self._find_ok(kind, name) is not None:
            return None
        record = next((r for r in self.records if r.kind == kind and r.name == name), None)
        if record is None:
            return None
        uninstall = "" if record.builtin else f", or pip uninstall {record.dist}"
        return (
            f"{record.error}. Fix: make it importable (install what the error names, or "
            f"reinstall {record.dist}){uninstall}; `snt-search plugins` lists it as BROKEN"
        )

    def has(self, kind: str, name: str) -> bool:
        """Whether ``get(kind, name)`` would succeed (``base:argument`` names included)."""
        try:
            self.get(kind, name)
        except PluginError:
            return False
        return True

    def _with_argument(self, kind: str, name: str) -> Plugin:
        """Resolve ``base:argument`` (e.g. ``timm:resnet26d``) through ``base.with_argument``."""
        base, _, argument = name.partition(":")
        record = self._find_ok(kind, base)
        factory = getattr(record.plugin, "with_argument", None) if record else None
        broken = self.why_broken(kind, base) if record is None else None
        if broken is not None:
            raise PluginError(f"{kind} {name!r}: {kind} {base!r} is installed but broken: {broken}")
        if factory is None:
            raise PluginError(
                f"no {kind} named {name!r}: names of the form 'base:argument' need a {kind} "
                f"'base' that accepts an argument (like 'timm:resnet26d'); "
                f"available: {', '.join(self.names(kind)) or '(none)'}"
            )
        instance: Plugin = factory(argument)
        instance.name = name
        return instance


def _find(kind: str) -> Iterable[metadata.EntryPoint]:
    seen: set[tuple[str, str, str]] = set()

    def order(ep: metadata.EntryPoint) -> tuple[bool, str, str]:
        return (
            _dist_of(ep)[0] != BUILTIN_DIST,
            ep.name,
            ep.value,
        )  # built-ins first: they keep their names

    for ep in sorted(metadata.entry_points(group=group(kind)), key=order):
        dist, _ = _dist_of(ep)
        key = (dist, ep.name, ep.value)  # the same dist found twice on sys.path counts once
        if key not in seen:
            seen.add(key)
            yield ep


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "?", "?"
    return dist.metadata["Name"] or "?", dist.version


def _validate(kind: str, label: str, obj: Any) -> str | None:
    base = KINDS[kind]
    if not (inspect.isclass(obj) and issubclass(obj, base)):
        return (
            f"{label}: a {kind} plugin must be a subclass of snt_search.specs.{base.__name__}, "
            f"got {obj!r}"
        )
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        return f"{label}: {obj.__name__} does not implement {missing} of {base.__name__}"
    try:
        obj()
    except Exception as exc:  # noqa: BLE001
        return f"{label}: {obj.__name__}() must instantiate with no arguments: {type(exc).__name__}: {exc}"
    return None


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, discovered on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry.discover()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the discovered plugins (after installing one, or in tests)."""
    global _REGISTRY
    _REGISTRY = None
