"""Worker processes: N processes run one study's trials against one shared storage.

Each worker is a fresh process that opens the storage itself, so workers on one machine behave
exactly like workers on many machines sharing a PostgreSQL database or a journal file. Workers
are forked from a ``forkserver`` that has imported torch, timm and snt-search once (and never
ran a torch op, so no thread pool or CUDA context is inherited): a worker starts in well under
a second instead of paying the ~5-10 s import each. Each gets
``cores // N`` torch threads (``torch.set_num_threads``) so that N workers do not fight over
the cores.

Ctrl-C reaches every worker (the terminal signals the whole process group; the parent also
forwards it): each worker stops its trial cleanly, the parent waits for them and re-raises
``KeyboardInterrupt``. A worker that dies (``kill -9``, out of memory) is reported in its
:class:`WorkerExit`; its trial is failed by heartbeat and re-queued by the storage.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

__all__ = ["WorkerExit", "run_workers", "split", "threads_per_worker", "usable_cores"]

PRELOAD = ["torch", "timm", "optuna", "snt_search.driver", "snt_search_builtins"]
INTERRUPT_WAIT_S = 60.0  # how long interrupted workers get to stop before being terminated


@dataclass(frozen=True)
class WorkerExit:
    """How one worker process ended: ``exitcode`` 0 (done), 130 (interrupted), <0 (signal)."""

    index: int
    pid: int | None
    exitcode: int | None

    @property
    def ok(self) -> bool:
        return self.exitcode == 0

    def describe(self) -> str:
        code = self.exitcode
        if code is not None and code < 0:
            how = f"was killed by signal {-code} ({signal.Signals(-code).name})"
        elif code == 130:
            how = "was interrupted"
        else:
            how = f"exited with code {code}"
        return f"worker {self.index} (pid {self.pid}) {how}"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def threads_per_worker(n_workers: int, cores: int | None = None) -> int:
    """Torch threads for each of ``n_workers`` sharing ``cores`` (at least 1)."""
    return max(1, (cores or usable_cores()) // max(n_workers, 1))


def split(total: int, n: int) -> list[int]:
    """``total`` items over at most ``n`` workers, as evenly as possible, no empty shares."""
    shares = [total // n + (i < total % n) for i in range(n)]
    return [s for s in shares if s > 0]


def run_workers(
    target: Callable[..., None],
    args: Sequence[tuple[Any, ...]],
    *,
    threads: int,
    poll: Callable[[], None] | None = None,
    poll_s: float = 1.0,
) -> list[WorkerExit]:
    """Run ``target(*args[i])`` in one spawned process per entry; wait for all of them.

    ``target`` and its arguments must be picklable (a module-level function). ``poll`` is
    called every ``poll_s`` seconds while they run (to refresh a progress display). Returns
    one :class:`WorkerExit` per worker, in order. On ``KeyboardInterrupt`` the workers are
    asked to stop, waited for, and the interrupt is re-raised.
    """
    ctx = _context()
    procs = [
        ctx.Process(
            target=_bootstrap,
            args=(target, threads, worker_args),
            name=f"snt-search-worker-{i}",
        )
        for i, worker_args in enumerate(args)
    ]
    try:
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            procs[next(i for i, p in enumerate(procs) if p.is_alive())].join(poll_s)
            if poll is not None:
                poll()
    except KeyboardInterrupt:
        _stop(procs)
        raise
    return [WorkerExit(i, p.pid, p.exitcode) for i, p in enumerate(procs)]


def _context() -> Any:
    """``forkserver`` with the heavy imports preloaded where the OS has it, else ``spawn``."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD + _plugin_modules())
    return ctx


def _plugin_modules() -> list[str]:
    """Modules of the built-in plugins (read from the entry points, nothing imported here).

    Third-party plugins are not preloaded: one that raises on import would take the fork
    server down; workers import them (and report a broken one) as usual."""
    from importlib import metadata

    from .registry import group
    from .specs import KINDS

    return sorted(
        {
            ep.module
            for kind in KINDS
            for ep in metadata.entry_points(group=group(kind))
            if ep.module.startswith("snt_search_builtins.")
        }
    )


def _stop(procs: list[Any]) -> None:
    """Forward SIGINT, give the workers time to stop their trials, then terminate them."""
    for p in procs:
        if p.is_alive() and p.pid is not None:
            try:
                os.kill(p.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    for p in procs:
        if p.pid is not None:
            p.join(INTERRUPT_WAIT_S)
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join()


def _interrupt_once(signum: int, frame: FrameType | None) -> None:
    """The first SIGINT raises KeyboardInterrupt; later ones (forwarded copies) are ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _bootstrap(target: Callable[..., None], threads: int, args: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, _interrupt_once)
    import torch

    torch.set_num_threads(threads)
    try:
        target(*args)
    except KeyboardInterrupt:
        sys.exit(130)
