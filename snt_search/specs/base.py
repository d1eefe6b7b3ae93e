"""The base every plugin kind shares: a name, a summary and typed hyperparameters.

A plugin is a class. The registry instantiates it with no arguments and sets ``name`` from
the entry point, so one class may be registered under several names. Hyperparameters are
declared once, in ``defaults``; a study space may fix or search exactly those keys and no
others (see ``resolve_params``), so a typo in a space file is an error, not a silent default.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Param", "Plugin", "PluginError", "Range"]

Param = bool | int | float | str


@dataclass(frozen=True)
class Range:
    """The values a numeric plugin parameter may take, checked before any trial runs.

    ``Range(0.0, low_open=True)``: ``0 < value``; ``Range(0.0, 1.0, high_open=True)``:
    ``0 <= value < 1``. A plugin declares them in ``ranges`` (``{"rho": Range(0.0, ...)}``);
    :meth:`Plugin.resolve_params` and a space's check (also on the bounds of a searched range,
    which a sampler may draw) refuse a value outside, naming the parameter and the range.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    def __str__(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        return f"{left}{low}, {high}{right}"


class PluginError(ValueError):
    """A plugin was used against its contract (unknown name, unknown parameter, bad value)."""


class Plugin(ABC):  # noqa: B024 - abstract by intent; each kind adds its abstract method
    """Common contract of the five plugin kinds.

    Subclasses set ``kind`` (done by the kind's base class), may set ``defaults`` (the
    hyperparameters they accept, with their default values) and should have a docstring whose
    first line is the one-line summary shown by ``snt-search plugins``.
    """

    kind: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Param]] = {}
    ranges: ClassVar[Mapping[str, Range]] = {}  # allowed values of numeric defaults
    name: str = ""

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``defaults`` updated with ``params``; reject keys the plugin does not declare.

        Values are coerced to the type of their default (an int given for a float default is
        accepted), so a plugin can rely on the types it declared.
        """
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "(none)"
            raise PluginError(
                f"{self.kind} {self.name!r} has no parameter {unknown[0]!r}; "
                f"it accepts: {known}. Fix the name in the study space or the command line."
            )
        merged = dict(self.defaults)
        for key, value in params.items():
            merged[key] = _coerce(self.kind, self.name, key, self.defaults[key], value)
            problem = self.range_problem(key, merged[key])
            if problem is not None:
                raise PluginError(f"{self.kind} {self.name!r}: {problem}")
        return merged

    @classmethod
    def range_problem(cls, key: str, value: Any) -> str | None:
        """Why ``value`` is outside parameter ``key``'s declared :class:`Range`, or ``None``."""
        allowed = cls.ranges.get(key)
        if allowed is None or not isinstance(value, int | float) or isinstance(value, bool):
            return None
        if allowed.admits(float(value)):
            return None
        return f"parameter {key!r} must lie in {allowed}, got {value!r}; fix the study space"


def _coerce(kind: str, name: str, key: str, default: Param, value: Any) -> Param:
    expected = type(default)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise PluginError(
        f"{kind} {name!r}: parameter {key!r} must be {expected.__name__} "
        f"(like its default {default!r}), got {value!r} ({type(value).__name__})."
    )
