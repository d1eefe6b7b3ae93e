"""Notes a study prints before it starts about plugins whose names are taken.

A plugin registered under a name another plugin already holds (built-ins keep theirs) is
BROKEN in ``snt-search plugins``, and that name keeps running the other plugin. A study
asking for the name would silently run a plugin its author did not mean; these notes say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import PluginRecord

__all__ = ["clash_notes"]


def clash_notes(records: Iterable[PluginRecord], used: Mapping[str, Sequence[str]]) -> list[str]:
    """One line per record whose name is taken (``taken_by`` set), with the fix.

    ``used`` maps a plugin kind to the names a study asks for (``Space.plugins``): a clash on
    one of those names says that this study runs the other plugin, and comes first.
    """
    first: list[str] = []
    rest: list[str] = []
    for r in records:
        if r.taken_by is None:
            continue
        group = f"snt_search.{r.kind}s"
        runs = f"{r.kind} {r.name!r} runs {r.taken_by}, not {r.label}"
        fix = (
            f"Fix: register {r.label} under another name in {r.dist}'s entry points "
            f'([project.entry-points."{group}"]) and ask for that name'
        )
        if r.name in used.get(r.kind, ()):
            first.append(f"this study's {runs} (the name is taken; {r.label} is BROKEN). {fix}")
        else:
            rest.append(f"{r.label} is BROKEN: its name is taken, so {runs} in every study. {fix}")
    return first + rest
