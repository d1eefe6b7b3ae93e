"""Memory accounting for keeping first-order autograd graphs between Hessian-vector products.

``double_backward`` needs ``g = dL/dw`` with its graph; recomputing it for every product costs a
forward and a backward pass (~30% of a product). Keeping it costs the memory of the tensors
autograd saved while building it, for every batch at once. :func:`saved_bytes` measures that
on one batch through ``torch.autograd.graph.saved_tensors_hooks`` (distinct storages, the
parameters themselves excluded) and :func:`cache_budget_bytes` says how much may be used:
``CACHE_MEMORY_FRACTION`` of the free device memory (CUDA: ``torch.cuda.mem_get_info``; CPU:
``MemAvailable`` of ``/proc/meminfo``, else ``sysconf``; 0 when unknown, i.e. no cache).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["CACHE_MEMORY_FRACTION", "SavedBytes", "cache_budget_bytes", "saved_bytes"]

CACHE_MEMORY_FRACTION = 0.5


@dataclass
class SavedBytes:
    """Bytes of distinct storages autograd saved inside a :func:`saved_bytes` block."""

    storages: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.storages.values())


@contextmanager
def saved_bytes(exclude: Sequence[Tensor] = ()) -> Iterator[SavedBytes]:
    """Count the storages saved for backward in this block (``exclude``: e.g. parameters)."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    out = SavedBytes()

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            out.storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield out


def cache_budget_bytes(device: torch.device) -> int:
    """Bytes the graph cache may use on ``device`` (see the module docstring)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CACHE_MEMORY_FRACTION)
    if device.type != "cpu":
        return 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * CACHE_MEMORY_FRACTION)
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0
    return int(pages * CACHE_MEMORY_FRACTION)
