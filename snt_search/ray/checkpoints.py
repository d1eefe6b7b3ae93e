"""Pruning Ray Tune trial checkpoints without breaking ``Tuner.restore``.

Every epoch a trial reports a checkpoint. Ray's ``CheckpointConfig(num_to_keep=k)`` deletes
the older ones at once, while the experiment state on storage (what ``Tuner.restore`` reads)
is uploaded in the background, seconds later: a driver killed in between leaves a state that
points at a deleted checkpoint, and the trial cannot be restored. :class:`CheckpointPruner`
keeps the newest ``keep`` checkpoints of each trial, and deletes an older one only once it has
been superseded for ``grace_s`` seconds, far longer than the state upload takes, so the stored
state always points at a checkpoint that exists. Disk use per trial: ``keep`` checkpoints plus
those written in the last ``grace_s`` seconds. Its list is saved with the experiment
(``get_state``), so a restored experiment goes on pruning.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ray.tune import Callback, Checkpoint

__all__ = ["CheckpointPruner"]

log = logging.getLogger(__name__)


class CheckpointPruner(Callback):
    """Delete checkpoints older than the newest ``keep`` once superseded for ``grace_s``."""

    def __init__(self, keep: int = 2, grace_s: float = 120.0) -> None:
        if keep < 1 or grace_s < 0:
            raise ValueError(f"keep must be >= 1 and grace_s >= 0, got {keep}, {grace_s}")
        self.keep, self.grace_s = keep, grace_s
        self._seen: dict[str, list[tuple[float, Checkpoint]]] = {}  # trial id -> (saved, ckpt)

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Checkpoint, **info: Any
    ) -> None:
        self._seen.setdefault(trial.trial_id, []).append((time.time(), checkpoint))
        self.prune()

    def prune(self, now: float | None = None) -> None:
        """Delete every checkpoint that is out of the newest ``keep`` and past its grace."""
        now = time.time() if now is None else now
        for trial_id, saved in self._seen.items():
            # A checkpoint is superseded when the next one was saved.
            old = saved[: -self.keep]
            expired = [i for i, _ in enumerate(old) if now - saved[i + 1][0] >= self.grace_s]
            for i in reversed(expired):
                _, checkpoint = saved.pop(i)
                if checkpoint.filesystem is None:
                    continue
                try:
                    checkpoint.filesystem.delete_dir(checkpoint.path)
                except (FileNotFoundError, OSError) as exc:  # gone already; nothing to free
                    log.debug("checkpoint %s of %s: %s", checkpoint.path, trial_id, exc)

    def get_state(self) -> dict[str, Any]:
        return {"seen": self._seen}

    def set_state(self, state: dict[str, Any]) -> None:
        self._seen = dict(state.get("seen", {}))
