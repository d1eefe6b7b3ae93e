"""Where study spaces are found: ``./studies/``, ``$SNT_SEARCH_STUDIES`` and plugins.

A plugin distribution ships spaces by declaring an entry point in the group
``snt_search.spaces`` whose value is a package holding ``*.toml`` files; snt-search's own
spaces are registered that way too (``builtin = snt_search_studies``). Earlier sources win on a
name clash: a ``studies/mixer_prune.toml`` in the working directory overrides the built-in one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from .space import Space, SpaceError, load_space

__all__ = ["SpaceEntry", "find_spaces", "resolve_space"]

SPACES_ENV = "SNT_SEARCH_STUDIES"


@dataclass(frozen=True)
class SpaceEntry:
    name: str
    path: Path
    origin: str
    error: str | None = None


def find_spaces() -> dict[str, SpaceEntry]:
    """Every space file found, by name (the file's stem)."""
    found: dict[str, SpaceEntry] = {}

    def add_dir(folder: Path, origin: str) -> None:
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, SpaceEntry(path.stem, path, origin))

    add_dir(Path.cwd() / "studies", "./studies")
    for folder in filter(None, os.environ.get(SPACES_ENV, "").split(os.pathsep)):
        add_dir(Path(folder), f"${SPACES_ENV}")
    for ep in sorted(metadata.entry_points(group="snt_search.spaces"), key=lambda e: e.name):
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


def resolve_space(name_or_path: str) -> Space:
    """Load a space by file path, or by name among :func:`find_spaces`."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return load_space(candidate)
    spaces = find_spaces()
    if name_or_path not in spaces:
        known = ", ".join(sorted(spaces)) or "(none)"
        raise SpaceError(
            f"--space {name_or_path!r}: no such space; known spaces: {known}. "
            f"Pass a path to a .toml file, or see `snt-search spaces`."
        )
    return load_space(spaces[name_or_path].path)
