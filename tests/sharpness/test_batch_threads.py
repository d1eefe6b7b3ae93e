"""Per-batch work of a Hessian-vector product split across CPU threads."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snt_search.sharpness import batch_threads
from snt_search.sharpness import hvp as hvp_module
from snt_search.sharpness.batch_threads import shard_count, sum_over_shards
from snt_search.sharpness.hvp import HessianVectorProduct

CPU = torch.device("cpu")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_shards_cover_every_batch_once_in_order(two_threads: None) -> None:
    seen: list[tuple[str, list[int], bool, int]] = []
    lock = threading.Lock()

    def work(shard: Sequence[int]) -> torch.Tensor:
        with lock:
            seen.append(
                (
                    threading.current_thread().name,
                    list(shard),
                    torch.is_grad_enabled(),
                    torch.get_num_threads(),
                )
            )
        return torch.tensor([float(sum(2**i for i in shard))])

    with torch.no_grad():
        total = sum_over_shards(work, 5, CPU)
    assert float(total) == 2**5 - 1  # every batch exactly once
    assert sorted(s for _, s, _, _ in seen) == [[0, 2, 4], [1, 3]]
    assert all(name.startswith("snt-hvp") for name, *_ in seen)
    assert not any(grad for _, _, grad, _ in seen)  # the caller's grad mode
    assert all(n == 1 for *_, n in seen)  # 2 threads, 2 shards: one intra-op thread each
    assert torch.get_num_threads() == 2  # restored for the caller


def test_no_threads_for_one_batch_cuda_or_one_thread(two_threads: None) -> None:
    assert shard_count(1, CPU) == 1
    assert shard_count(8, torch.device("cuda")) == 1
    assert shard_count(8, CPU) == 2
    torch.set_num_threads(1)
    assert shard_count(8, CPU) == 1


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.GELU(), nn.Flatten(), nn.Linear(64, 3)
    )


def test_threaded_products_match_serial_ones(
    two_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _net().eval()
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(n, 3, 4, 4, generator=gen), torch.arange(n) % 3) for n in (5, 7, 6)]
    v = torch.randn(sum(p.numel() for p in model.parameters()), generator=gen)

    def products() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hvp = HessianVectorProduct(model, batches, F.cross_entropy, "double_backward", True)
        return hvp.gradient(), hvp(v), hvp(v)

    g, a, b = products()
    assert torch.equal(a, b)  # deterministic for a given thread count
    monkeypatch.setattr(batch_threads, "shard_count", lambda batches, device: 1)
    g1, serial, _ = products()
    torch.testing.assert_close(g, g1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a, serial, rtol=1e-5, atol=1e-6)


def test_train_mode_stays_on_the_calling_thread(
    two_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _net().train()  # forward passes update BatchNorm statistics
    batches = [(torch.randn(4, 3, 4, 4), torch.arange(4) % 3) for _ in range(2)]
    called: list[int] = []
    monkeypatch.setattr(hvp_module, "sum_over_shards", lambda *a: called.append(1))
    hvp = HessianVectorProduct(model, batches, F.cross_entropy, "double_backward", True)
    hvp(torch.zeros(hvp.dim))
    assert not called


def test_map_shards_deals_the_given_batches_and_runs_one_on_the_caller(two_threads: None) -> None:
    def work(shard: Sequence[int]) -> tuple[str, list[int], int]:
        return threading.current_thread().name, list(shard), torch.get_num_threads()

    parts = batch_threads.map_shards(work, [1, 2, 4], CPU)
    assert [ids for _, ids, _ in parts] == [[1, 4], [2]]
    assert all(name.startswith("snt-hvp") and n == 1 for name, _, n in parts)
    (only,) = batch_threads.map_shards(work, [3], CPU)  # one batch: the caller, every thread
    assert only == (threading.current_thread().name, [3], 2)


@pytest.mark.parametrize("n_batches", [2, 3, 4])
def test_kept_graphs_are_built_balanced(
    two_threads: None, monkeypatch: pytest.MonkeyPatch, n_batches: int
) -> None:
    """Batch 0's graph is built (and measured) first; the rest are built together, a lone
    remaining batch on the calling thread with every intra-op thread, not on one shard thread
    while the others wait."""
    model = _net().eval()
    batches = [(torch.randn(4, 3, 4, 4), torch.arange(4) % 3) for _ in range(n_batches)]
    built: list[tuple[int, str, int]] = []
    first_order = HessianVectorProduct._first_order

    def spy(self: HessianVectorProduct, x: torch.Tensor, y: torch.Tensor) -> object:
        b = next(i for i, (bx, _) in enumerate(self.batches) if bx is x)
        built.append((b, threading.current_thread().name, torch.get_num_threads()))
        return first_order(self, x, y)

    monkeypatch.setattr(HessianVectorProduct, "_first_order", spy)
    hvp = HessianVectorProduct(model, batches, F.cross_entropy, "double_backward", True)
    main = threading.current_thread().name
    assert built == [(0, main, 2)]
    g = hvp.gradient()
    hvp(torch.ones(hvp.dim))
    assert sorted(b for b, _, _ in built) == list(range(n_batches))  # each built once
    on_shards = {1: [], 2: [1, 2], 3: [1, 2]}[n_batches - 1]  # pairs, one per shard thread
    on_caller = {1: [1], 2: [], 3: [3]}[n_batches - 1]  # the odd one out: every thread
    assert sorted(b for b, name, n in built if name.startswith("snt-hvp") and n == 1) == on_shards
    assert [b for b, name, n in built[1:] if name == main and n == 2] == on_caller
    monkeypatch.setattr(HessianVectorProduct, "_first_order", first_order)
    plain = HessianVectorProduct(model, batches, F.cross_entropy, "double_backward", False)
    torch.testing.assert_close(g, plain.gradient(), rtol=1e-5, atol=1e-6)
