"""Shared pieces of the subcommands: the console, --json output, a JSON encoder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print machine-readable JSON on stdout instead of tables",
    )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    return str(value)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with TOML values (``0.1``, ``true``, ``"adam"``; bare words are strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.lr=0.001")
        try:
            out[key.strip()] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text
    return out
