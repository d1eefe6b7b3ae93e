"""One intra-op thread per test: tiny models run in milliseconds, and two threads spinning on
a shared, busy 2-core machine made them take seconds. Restored after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
