"""What a space would search, checked without running it (``spaces --check``, ``study --dry-run``).

:func:`describe_space` runs :meth:`Space.check` against the installed plugins (unknown or
broken plugins, unknown parameters, values of the wrong type raise :class:`SpaceError`, a
one-line error) and returns what the space searches: each plugin kind's candidates with
their origin, each parameter's range and how many values it can take, the budgets, and the
number of distinct plugin combinations and of whole configurations (None when a parameter is
continuous). :func:`print_description` prints it in tables that read at 80 columns.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ._tables import Column, fit_table

if TYPE_CHECKING:
    from ..registry import Registry
    from ..space import Dimension, Space

__all__ = ["describe_space", "print_description"]


def describe_space(space: Space, registry: Registry, budget: str | None = None) -> dict[str, Any]:
    """Check ``space`` (and ``budget``, when given) and say what it searches (JSON-ready)."""
    space.check(registry)
    if budget is not None:
        space.budget(budget)
    params = [_param(dim) for dim in space.params.values()]
    combos = [
        dict(zip(space.plugins, c, strict=True)) for c in itertools.product(*space.plugins.values())
    ]
    continuous = [p["key"] for p in params if p["values"] is None]
    configurations = None
    if not continuous:
        configurations = sum(
            math.prod(p["values"] for p in params if _applies(p["key"], combo)) for combo in combos
        )
    return {
        "name": space.name,
        "path": str(space.path),
        "sampler": space.sampler,
        "seed": space.seed,
        "objectives": dict(space.objectives),
        "plugins": {
            kind: [{"name": n, "origin": _origin(registry, kind, n)} for n in names]
            for kind, names in space.plugins.items()
        },
        "params": params,
        "budgets": {name: b.as_dict() for name, b in space.budgets.items()},
        "budget": budget,
        "plugin_combinations": len(combos),
        "continuous": continuous,
        "configurations": configurations,
    }


def print_description(info: dict[str, Any], console: Console) -> None:
    """``info`` from :func:`describe_space`, as a few lines and tables."""
    objectives = ", ".join(f"{k} ({v[:3]})" for k, v in info["objectives"].items())
    console.print(
        f"space {info['name']} ({info['path']}): OK, its plugins and parameters check out",
        markup=False,
        highlight=False,
    )
    console.print(
        f"sampler {info['sampler']} (seed {info['seed']}); objectives {objectives}",
        markup=False,
        highlight=False,
    )
    plugin_rows = [
        {
            "kind": kind,
            "candidates": ", ".join(p["name"] for p in plugins),
            "origin": ", ".join(sorted({p["origin"] for p in plugins})),
        }
        for kind, plugins in info["plugins"].items()
    ]
    console.print(
        fit_table(
            [
                Column("kind", "kind", required=True),
                Column("candidates", "candidates", required=True, wrap=True),
                Column("origin", "origin", wrap=True),
            ],
            plugin_rows,
            console=console,
            title=f"plugins: {info['plugin_combinations']} combinations",
        )
    )
    console.print(
        fit_table(
            [
                Column("key", "parameter", required=True),
                Column("range", "value or range", required=True, wrap=True),
                Column("values", "values", "right", constant_to_caption=False),
            ],
            [
                {**p, "values": "continuous" if p["values"] is None else p["values"]}
                for p in info["params"]
            ],
            console=console,
            title="parameters",
        )
    )
    budget_cols = [Column("name", "budget", required=True)] + [
        Column(k, k.replace("sharpness_", "λ ").replace("_", " "), "right")
        for k in (
            "epochs",
            "batch_size",
            "train_subset",
            "test_subset",
            "sharpness_samples",
            "sharpness_max_iter",
        )
    ]
    console.print(
        fit_table(budget_cols, list(info["budgets"].values()), console=console, title="budgets")
    )
    if info["configurations"] is None:
        size = f"unbounded: continuous parameters {', '.join(info['continuous'])}"
    else:
        size = f"{info['configurations']} distinct configurations (no continuous parameter)"
    console.print(
        f"search space: {info['plugin_combinations']} plugin combinations; {size}",
        markup=False,
        highlight=False,
    )


def _param(dim: Dimension) -> dict[str, Any]:
    """A parameter's range as text and how many values it takes (None: continuous)."""
    if dim.fixed:
        return {"key": dim.key, "range": repr(dim.value), "values": 1}
    if dim.choices:
        return {
            "key": dim.key,
            "range": " | ".join(map(repr, dim.choices)),
            "values": len(dim.choices),
        }
    low, high = dim.low, dim.high
    assert low is not None and high is not None
    text = (
        f"{low} .. {high}"
        + (", log" if dim.log else "")
        + (f", step {dim.step}" if dim.step else "")
    )
    integer = isinstance(low, int) and isinstance(high, int) and not isinstance(dim.step, float)
    if integer or dim.step:
        step = dim.step or 1
        return {
            "key": dim.key,
            "range": text,
            "values": int(math.floor((high - low) / step + 1e-9)) + 1,
        }
    return {"key": dim.key, "range": text, "values": None}


def _origin(registry: Registry, kind: str, name: str) -> str:
    """``dist version`` of the plugin ``name`` (``timm:resnet50``: of ``timm``)."""
    base = name.partition(":")[0]
    found = [r.origin for r in registry if r.ok and r.kind == kind and r.name in (name, base)]
    return found[0] if found else "?"


def _applies(key: str, combo: dict[str, str]) -> bool:
    """``optimizer.sam.rho`` is drawn only when the optimizer is sam; ``train.*`` always."""
    kind, _, rest = key.partition(".")
    return kind not in combo or rest.split(".")[0] == combo[kind]
