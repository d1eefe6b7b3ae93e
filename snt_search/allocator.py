"""Keep freed host memory for reuse: glibc's ``malloc`` tuned for training loops.

A CPU training step allocates and frees the same activation-sized buffers every step. glibc
serves each allocation above its mmap threshold (128 KiB at start, adjusted up to 32 MiB as
buffers are freed) with fresh pages from the kernel and gives freed memory at the top of
the heap back beyond its trim threshold; every fresh 4 KiB page is then zero-filled by the
kernel on first touch (a page fault). In a ResNet-20 step on a 2-core CPU that churn cost
~10% of the step, and more for a model that allocates more buffers, such as a pre-activated
one whose branch-opening activations cannot work in place (``docs/benchmarks.md``).

:func:`reuse_freed_memory` sets both thresholds once per process (``mallopt``): buffers up to
32 MiB come from the heap, and up to 1 GiB of freed heap is kept for the next step instead of
being returned. It is what PyTorch's CPU performance guide gets from jemalloc or tcmalloc,
without preloading another allocator. The cost: the process keeps its peak heap size until
it exits, as the CUDA caching allocator does on a GPU.

It leaves the allocator alone, saying why, when the C library is not glibc, when another
allocator is preloaded (``LD_PRELOAD``), when the user tuned glibc already
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``malloc`` tunables in
``GLIBC_TUNABLES``), or when ``SNT_SEARCH_MALLOC=default``. :func:`snt_search.training.train`
and the ``snt-search`` command call it.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "reuse_freed_memory"]

MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 1 << 30
_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_lock = threading.Lock()
_status: str | None = None


def reuse_freed_memory() -> str:
    """Tune glibc's ``malloc`` for this process once; return what was done, in words.

    The first call decides and the result sticks (later calls return the same words), so
    libraries and commands may all call it. Never raises: where it cannot or should not
    tune, it returns the reason and the process keeps its allocator as it was.
    """
    global _status
    with _lock:
        if _status is None:
            _status = _tune()
        return _status


def _tune() -> str:
    reason = _reason_to_leave_alone()
    if reason:
        return f"malloc left as it is: {reason}"
    libc = ctypes.CDLL(None)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return "malloc left as it is: this C library has no mallopt()"
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    if not ok:
        return "malloc partly tuned: glibc refused a mallopt() setting"
    return (
        f"malloc keeps freed memory: buffers up to {MMAP_THRESHOLD >> 20} MiB from the heap, "
        f"up to {TRIM_THRESHOLD >> 20} MiB of it kept (SNT_SEARCH_MALLOC=default turns this off)"
    )


def _reason_to_leave_alone() -> str:
    """Why not to touch the allocator, or ``''`` to go ahead."""
    if os.environ.get("SNT_SEARCH_MALLOC", "").strip().lower() == "default":
        return "SNT_SEARCH_MALLOC=default"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return f"the C library is not glibc ({platform.system()} {platform.libc_ver()[0]!r})"
    preload = os.environ.get("LD_PRELOAD", "")
    if any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return f"another allocator is preloaded (LD_PRELOAD={preload})"
    user = [name for name in _USER_SETTINGS if name in os.environ]
    if "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        user.append("GLIBC_TUNABLES")
    if user:
        return f"already tuned by the environment ({', '.join(user)})"
    return ""
