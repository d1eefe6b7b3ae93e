"""Where study spaces are found: ``./studies/``, ``$SNT_SEARCH_STUDIES`` and plugins.

A space is named by its file: ``studies/mixer_prune.toml`` is the space ``mixer_prune``
(``[study] name`` only sets the default study name). A plugin distribution ships spaces by
declaring an entry point in the group ``snt_search.spaces`` whose value is a package holding
``*.toml`` files; snt-search's own spaces are registered that way too
(``builtin = snt_search_studies``).

The same name found in several places is a collision, listed, never silently dropped: the
first place in this order is the one ``--space NAME`` loads, ``./studies``, then the folders
of ``$SNT_SEARCH_STUDIES`` in their order, then snt-search's own spaces, then other packages'
(by distribution and entry-point name), so a user's own file overrides a shipped one on
purpose and a package cannot replace a built-in. Each other file of that name is a
:class:`SpaceEntry` of its own whose ``shadowed_by`` is the one used and whose ``error`` says
so and how to run it. One file reached twice (an editable install whose package *is*
``./studies``) is one space.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from importlib import metadata, resources
from pathlib import Path

from .registry import BUILTIN_DIST, Registry
from .space import Space, SpaceError, load_space

__all__ = ["SpaceEntry", "find_spaces", "resolve_space", "start_notes"]

SPACES_ENV = "SNT_SEARCH_STUDIES"


@dataclass(frozen=True)
class SpaceEntry:
    """One space file found: its name (the file's stem), where it is and where it came from.

    ``error`` is set for a package that cannot be imported and for a file whose name another,
    earlier file already has (``shadowed_by``: that file's entry)."""

    name: str
    path: Path
    origin: str
    error: str | None = None
    shadowed_by: SpaceEntry | None = None


def find_spaces() -> dict[str, SpaceEntry]:
    """Every space file found: the one ``--space NAME`` loads under ``NAME``, and under
    ``"NAME (ORIGIN)"`` each other file of that name (and ``"ORIGIN (broken)"`` each space
    package that cannot be imported)."""
    found: dict[str, SpaceEntry] = {}
    seen: set[Path] = set()

    def add_dir(folder: Path, origin: str) -> None:
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.toml")):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            entry = SpaceEntry(path.stem, path, origin)
            used = found.get(path.stem)
            if used is None:
                found[path.stem] = entry
            else:
                found[f"{path.stem} ({origin})"] = replace(
                    entry, error=_shadowed(entry, used), shadowed_by=used
                )

    add_dir(Path.cwd() / "studies", "./studies")
    for folder in filter(None, os.environ.get(SPACES_ENV, "").split(os.pathsep)):
        add_dir(Path(folder), f"${SPACES_ENV}")
    for ep in sorted(metadata.entry_points(group="snt_search.spaces"), key=_package_order):
        dist = ep.dist.metadata["Name"] if ep.dist is not None else "?"
        origin = f"{dist}[{ep.name}]"
        try:
            package_dir = Path(str(resources.files(ep.value)))
        except (ModuleNotFoundError, TypeError) as exc:
            found.setdefault(
                f"{origin} (broken)",
                SpaceEntry(
                    ep.name,
                    Path(ep.value),
                    origin,
                    f"{origin}: cannot import space package {ep.value!r}: {exc}",
                ),
            )
            continue
        add_dir(package_dir, origin)
    return found


def _package_order(ep: metadata.EntryPoint) -> tuple[bool, str, str]:
    """snt-search's own spaces first, then other packages by distribution and entry name."""
    dist = ep.dist.metadata["Name"] if ep.dist is not None else "?"
    return (dist != BUILTIN_DIST, dist, ep.name)


def _shadowed(entry: SpaceEntry, used: SpaceEntry) -> str:
    return (
        f"space {entry.name!r} is also {used.path} ({used.origin}), which `--space "
        f"{entry.name}` loads; this file ({entry.path}, {entry.origin}) runs only as "
        f"`--space {entry.path}`. A space is named by its file: rename one of the two to use "
        f"both by name"
    )


def resolve_space(name_or_path: str) -> Space:
    """Load a space by file path, or by name among :func:`find_spaces`."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return load_space(candidate)
    spaces = find_spaces()
    if name_or_path not in spaces:
        known = ", ".join(sorted({e.name for e in spaces.values() if not e.error})) or "(none)"
        raise SpaceError(
            f"--space {name_or_path!r}: no such space; known spaces: {known}. "
            f"Pass a path to a .toml file, or see `snt-search spaces`."
        )
    return load_space(spaces[name_or_path].path)


def start_notes(asked: str, space: Space, registry: Registry) -> list[str]:
    """What ``snt-search study --space ASKED`` says before it starts, one line each.

    Plugins whose names are taken (``Registry.notes``; those the space uses first), other
    files with the space's name when it was asked for by name, and the space's own notes
    (``[study] name`` differing from the file name)."""
    notes = registry.notes(space.plugins)
    if not (Path(asked).suffix == ".toml" or Path(asked).exists()):
        notes += [
            f"--space {asked}: {e.error}"
            for e in find_spaces().values()
            if e.shadowed_by is not None and e.name == asked
        ]
    return notes + list(space.notes)
