"""The ``snt-search`` command line. Each subcommand is one module with ``add_parser``/``run``.

Start-up stays well under a second for the listing commands: a command module imports only
argparse, rich and its own light helpers at module level, and everything heavy (torch, Ray,
plotly, Optuna's storages) inside ``add_parser`` or ``run``. :func:`main` builds the full
parser of the one command it runs; the others get a stub that only carries their help line.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from types import ModuleType

from rich.markup import escape

from .. import __version__
from ..allocator import reuse_freed_memory
from . import (
    dashboard,
    export,
    pareto,
    plugins,
    report,
    rerun,
    sharpness,
    spaces,
    study,
    train,
)
from ._common import err_console

COMMANDS: list[ModuleType] = [
    plugins,
    spaces,
    study,
    pareto,
    export,
    rerun,
    train,
    report,
    sharpness,
    dashboard,
]

__all__ = ["COMMANDS", "build_parser", "main"]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``snt-search`` parser; with ``command``, only that subcommand's is complete."""
    parser = argparse.ArgumentParser(
        prog="snt-search",
        description=(
            "Search datasets x backbones x SNT transforms x optimizers x compressors for models "
            "that are flat (low lambda_max) and lose little accuracy when compressed."
        ),
    )
    parser.add_argument("--version", action="version", version=f"snt-search {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        if command is None or _name(module) == command:
            module.add_parser(sub)
        else:
            sub.add_parser(_name(module), help=module.HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command(argv)).parse_args(argv)
    reuse_freed_memory()  # most commands train or evaluate models: keep freed host memory
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        again = shlex.join(["snt-search", *argv])
        err_console.print(
            f"interrupted; finished trials are stored, the running one is queued again. "
            f"Resume: {escape(again)}",
            soft_wrap=True,
            highlight=False,
        )
        return 130
    except Exception as exc:
        if not _user_error(exc):
            raise
        err_console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)  # one line
        return 2


def _name(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1]


def _command(argv: Sequence[str]) -> str:
    """The subcommand ``argv`` names (its first word); "" when none does (``--help``,
    ``--version``, a typo), where the stubs are all argparse needs to answer."""
    return next((a for a in argv if not a.startswith("-")), "")


def _user_error(exc: Exception) -> bool:
    """A bad argument, space, file or plugin (a one-line error), not a bug (a traceback).

    ``SpaceError`` is a ``ValueError``; ``PluginError`` is imported only here, once an error
    needs telling apart."""
    from ..specs import PluginError

    return isinstance(exc, (ValueError, FileNotFoundError, PluginError))
