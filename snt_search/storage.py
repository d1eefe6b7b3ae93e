"""Optuna storages from one URL, with heartbeats so a killed worker leaves no trial RUNNING.

``sqlite:///file.db``, ``postgresql://...`` and ``mysql://...`` open an RDB storage with a
heartbeat: a trial whose worker stopped beating is marked FAIL by the next worker and re-queued
once (``RetryHeartbeatStaleTrialCallback``). ``journal:path.log`` (or a path ending in ``.log``) opens a
journal file, which many processes on one file system can share without a database server.
"""

from __future__ import annotations

import warnings

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage

__all__ = ["DEFAULT_STORAGE", "open_storage"]

DEFAULT_STORAGE = "sqlite:///snt-search.db"
HEARTBEAT_S = 30
GRACE_S = 90


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Open the storage ``url`` names; raise ValueError with the accepted forms otherwise."""
    if url.startswith("journal:") or url.endswith(".log"):
        path = url.removeprefix("journal:")
        return JournalStorage(JournalFileBackend(path))
    if url.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql"):
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.x
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
            )
    raise ValueError(
        f"--storage {url!r} is not a storage URL; use sqlite:///file.db, "
        f"postgresql://user@host/db, mysql://user@host/db or journal:path/to/file.log"
    )
