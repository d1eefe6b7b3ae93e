"""``reuse_freed_memory``: freed host buffers are reused instead of faulted in afresh."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
import torch
from torch import nn

from snt_search import allocator

# Allocates, touches and frees buffers of a little over 4 MiB, each a little larger than the one
# before (glibc's defaults then map each one afresh, whatever else lies on the heap), and counts
# the minor page faults (fresh zero-filled pages) the loop took.
CHURN = """
import json, resource, sys
import torch
from snt_search.allocator import reuse_freed_memory
status = reuse_freed_memory()
again = reuse_freed_memory()
torch.ones(1 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for k in range(1, 41):
    buffer = torch.ones(((4 << 20) + k * (64 << 10)) // 4)
    del buffer
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"status": status, "again": again, "faults": faults}))
"""

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt tuning applies to glibc on Linux only",
)


def _churn(**env: str) -> dict[str, object]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in (*allocator._USER_SETTINGS, "SNT_SEARCH_MALLOC", "GLIBC_TUNABLES")
    }
    out = subprocess.run(
        [sys.executable, "-c", CHURN],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@glibc_only
def test_tuned_malloc_reuses_freed_buffers_instead_of_faulting_in_fresh_pages() -> None:
    tuned = _churn()
    default = _churn(SNT_SEARCH_MALLOC="default")
    assert str(tuned["status"]).startswith("malloc keeps freed memory")
    assert tuned["again"] == tuned["status"]  # the first call decides, later calls report it
    assert default["status"] == "malloc left as it is: SNT_SEARCH_MALLOC=default"
    # glibc's defaults map 40 buffers of 4+ MiB afresh (~40k pages); tuned, the heap keeps the
    # freed buffer and only its growth is new
    assert int(default["faults"]) > 30_000
    assert int(tuned["faults"]) * 3 < int(default["faults"])


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SNT_SEARCH_MALLOC": "default"}, "SNT_SEARCH_MALLOC=default"),
        ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "LD_PRELOAD=/usr/lib/libjemalloc.so.2"),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, "MALLOC_TRIM_THRESHOLD_"),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}, "GLIBC_TUNABLES"),
    ],
)
@glibc_only
def test_allocator_is_left_alone_where_the_user_chose_otherwise(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key in (*allocator._USER_SETTINGS, "SNT_SEARCH_MALLOC", "GLIBC_TUNABLES", "LD_PRELOAD"):
        monkeypatch.delenv(key, raising=False)
    assert allocator._reason_to_leave_alone() == ""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert named in allocator._reason_to_leave_alone()


def test_training_tunes_the_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    from snt_search import training
    from snt_search.config import TrainConfig
    from snt_search.registry import get_registry
    from snt_search.specs import DataRequest

    calls: list[bool] = []
    monkeypatch.setattr(training, "reuse_freed_memory", lambda: calls.append(True) or "")
    synthetic = get_registry().get("dataset", "synthetic")
    data = synthetic.load(DataRequest(), train_size=16, test_size=8)  # type: ignore[attr-defined]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, data.num_classes))
    adam = get_registry().get("optimizer", "adam")
    training.train(model, adam, {}, data, TrainConfig(epochs=1, batch_size=8))  # type: ignore[arg-type]
    assert calls == [True]
