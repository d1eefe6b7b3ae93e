"""The ``snt-search`` command line. Each subcommand is one module with ``add_parser``/``run``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.markup import escape

from .. import __version__
from ..allocator import reuse_freed_memory
from ..space import SpaceError
from ..specs import PluginError
from . import dashboard, export, pareto, plugins, report, sharpness, spaces, study, train
from ._common import err_console

COMMANDS = [plugins, spaces, study, pareto, export, train, report, sharpness, dashboard]

__all__ = ["COMMANDS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snt-search",
        description=(
            "Search datasets x backbones x SNT transforms x optimizers x compressors for models "
            "that are flat (low lambda_max) and lose little accuracy when compressed."
        ),
    )
    parser.add_argument("--version", action="version", version=f"snt-search {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reuse_freed_memory()  # every command trains or evaluates models: keep freed host memory
    try:
        return int(args.run(args))
    except (PluginError, SpaceError, ValueError, FileNotFoundError) as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        err_console.print(
            "interrupted; finished trials are stored: run the same command again to resume"
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
