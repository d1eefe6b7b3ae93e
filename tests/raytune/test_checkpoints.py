"""Checkpoint pruning keeps the newest ones and anything a lagging experiment state may name."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from ray.tune import Checkpoint

from snt_search.ray.checkpoints import CheckpointPruner


def test_old_checkpoints_go_only_after_their_grace(tmp_path: Path) -> None:
    pruner = CheckpointPruner(keep=2, grace_s=60)
    trial = SimpleNamespace(trial_id="t1")
    folders = []
    for i in range(4):
        folder = tmp_path / f"checkpoint_{i:06d}"
        folder.mkdir()
        folders.append(folder)
        pruner.on_checkpoint(0, [], trial, Checkpoint.from_directory(str(folder)))
    assert all(f.exists() for f in folders)  # superseded just now: a snapshot may still name them

    pruner.prune(now=time.time() + 61)
    assert [f.exists() for f in folders] == [False, False, True, True]

    restored = CheckpointPruner()
    restored.set_state(pruner.get_state())  # saved with the experiment, restored with it
    assert [c.path for _, c in restored.get_state()["seen"]["t1"]] == [str(f) for f in folders[2:]]
