"""Split per-batch work of a Hessian-vector product across CPU threads, one batch at a time each.

A product over ``B`` batches is a sum of ``B`` independent backward passes. On a CPU with ``T``
intra-op threads, small models (CIFAR ResNet-20, MLP-Mixer-S at batch 64) keep ``T`` threads
busy poorly inside one operation; running ``k = min(T, B)`` batches at once, each on ``T // k``
intra-op threads, made a product 1.06-1.10x faster (median of paired repeats, 2-core VM,
``docs/benchmarks.md``, "Sharpness"). Autograd runs a CPU backward pass on the thread that calls it and releases the
GIL inside its kernels, so plain threads suffice.

Batch ``i`` goes to shard ``i % k`` and each shard sums its batches in order, and the shards
are added in order: for a given thread count the result is deterministic. On CUDA, with one
batch or one thread, everything runs on the calling thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
from torch import Tensor

__all__ = ["map_shards", "shard_count", "sum_over_shards"]

_POOLS: dict[int, ThreadPoolExecutor] = {}
T = TypeVar("T")


def shard_count(batches: int, device: torch.device) -> int:
    """How many batches run at once: ``min(intra-op threads, batches)`` on CPU, else 1."""
    if device.type != "cpu" or batches < 2:
        return 1
    return max(1, min(torch.get_num_threads(), batches))


def map_shards(
    work: Callable[[Sequence[int]], T], batches: Sequence[int], device: torch.device
) -> list[T]:
    """``[work(shard) for shard in shards]``: ``batches`` dealt round-robin to ``k`` shards run
    at once (``k = shard_count(len(batches), device)``); one shard runs on the calling thread."""
    k = shard_count(len(batches), device)
    if k == 1:
        return [work(batches)]
    threads = torch.get_num_threads()
    per_shard = max(1, threads // k)
    grad_enabled = torch.is_grad_enabled()

    def run(shard: Sequence[int]) -> T:
        torch.set_num_threads(per_shard)  # this thread's OpenMP team; the caller's is restored
        with torch.set_grad_enabled(grad_enabled):  # grad mode is thread-local
            return work(shard)

    pool = _POOLS.get(k)
    if pool is None:
        pool = _POOLS[k] = ThreadPoolExecutor(k, thread_name_prefix="snt-hvp")
    try:
        return list(pool.map(run, [batches[j::k] for j in range(k)]))
    finally:
        torch.set_num_threads(threads)


def sum_over_shards(
    work: Callable[[Sequence[int]], Tensor], batches: int, device: torch.device
) -> Tensor:
    """``sum(work(shard) for shard in shards)`` over batches ``0 .. batches - 1``; ``work``
    sums its batches' contributions (see :func:`map_shards`)."""
    parts = map_shards(work, range(batches), device)
    total = parts[0]
    for part in parts[1:]:
        total.add_(part)
    return total
