"""``backend="auto"`` when the graph cache does not fit: time each backend once, keep the faster.

The choice is remembered per (model class, device type) for the process, so a study pays the
timing once; :func:`clear_backend_cache` forgets it. A backend that raises (``torch.func``
cannot trace every model) is left out with an INFO log line; ``double_backward`` always runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import torch

__all__ = ["choose_backend", "clear_backend_cache"]

_log = logging.getLogger(__name__)
_CHOICES: dict[Hashable, str] = {}


def clear_backend_cache() -> None:
    """Forget the ``backend="auto"`` choices made so far (they are cached per model class)."""
    _CHOICES.clear()


def choose_backend(key: Hashable, trials: Mapping[str, Callable[[], Any]], what: str) -> str:
    """The name in ``trials`` whose call is fastest (best of two), remembered under ``key``.

    The first entry must not fail; later ones may (they are then skipped). ``what`` names the
    model in log lines.
    """
    if key in _CHOICES:
        return _CHOICES[key]
    times: dict[str, float] = {}
    for i, (name, fn) in enumerate(trials.items()):
        try:
            times[name] = _time_best(fn)
        except Exception as exc:
            if i == 0:
                raise
            _log.info("%s failed on %s (%s: %s); not using it", name, what, type(exc).__name__, exc)
    choice = min(times, key=lambda k: times[k])
    _log.debug("hvp backend timings for %s: %s", what, times)
    _CHOICES[key] = choice
    return choice


def _time_best(fn: Callable[[], Any], repeats: int = 2) -> float:
    """Best wall time of ``repeats`` calls (the first call also warms up)."""
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best
