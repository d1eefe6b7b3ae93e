"""Optuna storages from one URL, with heartbeats so a killed worker leaves no trial RUNNING.

``sqlite:///file.db``, ``postgresql://...`` and ``mysql://...`` open an :class:`RDBStorage`;
``journal:path.log`` (or a path ending in ``.log``) opens a journal file, which many processes
on one file system (NFS included) can share without a database server.

Every storage beats: a worker records a heartbeat for its running trial every ``heartbeat_s``
seconds, and a trial whose heartbeat is older than ``grace_s`` is marked FAIL by the next worker
that starts a trial and re-queued (``RetryHeartbeatStaleTrialCallback``, at most
``MAX_RETRY`` times) with the system attribute ``failed_trial`` naming the original trial.
RDB storages use Optuna's own heartbeat table; Optuna's journal storage has no heartbeat, so
:class:`HeartbeatJournalStorage` adds one as a trial system attribute (wall-clock time: the
machines sharing a journal file need roughly synchronised clocks, well within ``grace_s``).

SQLite and several processes: SQLite allows one writer at a time. Each connection waits up to
``SQLITE_TIMEOUT_S`` for the lock instead of failing with "database is locked", and every
transaction starts with ``BEGIN IMMEDIATE`` (takes the write lock up front), so two writers
never deadlock on a read-then-write upgrade, which SQLite would report at once without
waiting. The database runs in WAL mode with ``synchronous=NORMAL`` (readers do not block the
writer; a commit costs no fsync; a killed process loses nothing committed, a power cut may
lose the last commits), so it must sit on a local disk, never on NFS. This is enough for a handful of workers on one machine; for many machines use
PostgreSQL/MySQL, or a journal file on a shared file system.

``postgresql://`` means what it means to SQLAlchemy, Optuna and optuna-dashboard: psycopg 3
(``pip install 'snt-search[postgres]'``); only where psycopg 3 is absent and psycopg2 is
installed does snt-search fall back to ``postgresql+psycopg2://``.

Commands that only read (``pareto``, ``report``, ``dashboard``) open storages with
:func:`open_existing_storage`, which never creates one: a missing SQLite or journal file, or a
database without Optuna's tables, is a :class:`StorageNotFound` naming ``--storage``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from .optuna_compat import BaseHeartbeat
from .optuna_compat import trial_id as storage_id

__all__ = [
    "DEFAULT_STORAGE",
    "GRACE_S",
    "HEARTBEAT_S",
    "HeartbeatJournalStorage",
    "StorageNotFound",
    "open_existing_storage",
    "open_storage",
    "require_storage",
    "storage_kind",
]

DEFAULT_STORAGE = "sqlite:///snt-search.db"
HEARTBEAT_S = 30
GRACE_S = 90
MAX_RETRY = 2  # a trial whose worker died is re-run at most this many times
SQLITE_TIMEOUT_S = 120
HEARTBEAT_ATTR = "snt_search:heartbeat"

StaleCallback = Callable[[optuna.Study, FrozenTrial], None]


def storage_kind(url: str) -> str:
    """``"journal"``, ``"sqlite"``, ``"postgresql"`` or ``"mysql"``; ValueError otherwise."""
    if url.startswith("journal:") or url.endswith(".log"):
        return "journal"
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme in ("sqlite", "postgresql", "mysql") and "://" in url:
        return scheme
    raise ValueError(
        f"--storage {url!r} is not a storage URL; use sqlite:///file.db, "
        f"postgresql://user@host/db, mysql://user@host/db or journal:path/to/file.log"
    )


class StorageNotFound(ValueError):
    """A command that only reads was given a storage that does not exist (nothing was created)."""


def open_existing_storage(url: str) -> optuna.storages.BaseStorage:
    """Open ``url`` for a command that only reads; raise :class:`StorageNotFound`, creating
    nothing, unless it already holds an Optuna storage (see :func:`require_storage`)."""
    require_storage(url)
    return open_storage(url)


def require_storage(url: str) -> None:
    """Raise :class:`StorageNotFound` unless ``url`` already holds an Optuna storage.

    Creates nothing: a SQLite or journal file must exist before anything opens it (opening
    would create it), and a database must already have Optuna's ``studies`` table.
    """
    fix = (
        f"read-only commands never create a storage. Fix: pass --storage with the URL "
        f"`snt-search study` wrote to (default {DEFAULT_STORAGE}, in the folder it ran in)"
    )
    if storage_kind(url) == "journal":
        journal = Path(url.removeprefix("journal:"))
        if not journal.is_file():
            raise StorageNotFound(f"--storage {url}: no such journal file {str(journal)!r}; {fix}")
        return
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(_with_driver(url))
    except (SQLAlchemyError, ValueError) as exc:
        raise StorageNotFound(f"--storage: not a valid database URL: {exc}") from None
    shown = parsed.render_as_string(hide_password=True)
    database = parsed.database or ""
    if storage_kind(url) == "sqlite" and database not in ("", ":memory:"):
        path = Path(database.removeprefix("file:"))  # ?uri=true names it file:path
        if not path.is_file():
            raise StorageNotFound(f"--storage {url}: no such database file {str(path)!r}; {fix}")
    try:
        engine = create_engine(parsed)
    except ImportError as exc:
        raise ValueError(
            f"--storage {shown}: its database driver is not installed: {exc}"
        ) from None
    try:
        with engine.connect() as connection:
            tables = inspect(connection).has_table("studies")
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StorageNotFound(
            f"--storage {shown}: cannot connect: {cause}. Fix: check the host, port, user and "
            f"database in --storage"
        ) from None
    finally:
        engine.dispose()
    if not tables:
        raise StorageNotFound(f"--storage {shown}: holds no Optuna storage (no studies); {fix}")


def open_storage(
    url: str, *, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S
) -> optuna.storages.BaseStorage:
    """Open the storage ``url`` names, with heartbeats (see the module docstring).

    ``grace_s`` must exceed ``heartbeat_s``: a live worker must never look dead.
    """
    if not 0 < heartbeat_s < grace_s:
        raise ValueError(
            f"heartbeats every {heartbeat_s}s with a grace period of {grace_s}s would fail live "
            f"trials; the grace period must be longer than the interval (defaults: "
            f"{HEARTBEAT_S}s and {GRACE_S}s)"
        )
    kind = storage_kind(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    if kind == "journal":
        return HeartbeatJournalStorage(
            JournalFileBackend(url.removeprefix("journal:")),
            heartbeat_interval=heartbeat_s,
            grace_period=grace_s,
            heartbeat_stale_trial_callback=retry,
        )
    url = _with_driver(url)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if kind == "sqlite":
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    for attempt in range(3):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.x
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(
                    url,
                    heartbeat_interval=heartbeat_s,
                    grace_period=grace_s,
                    heartbeat_stale_trial_callback=retry,
                    engine_kwargs=engine_kwargs,
                )
            break
        except (optuna.exceptions.StorageInternalError, SQLAlchemyError):
            # Two processes creating the tables of a new database at once: one of them loses
            # the race (a table, type or version row that already exists); try again.
            if attempt == 2:
                raise
            time.sleep(0.5 * (attempt + 1))
    if kind == "sqlite":
        _begin_immediate(storage)
    return storage


def _with_driver(url: str) -> str:
    """``postgresql://`` with psycopg2 when psycopg 3 (SQLAlchemy 2.1's default) is absent.

    Any other URL, and one naming its driver (``postgresql+psycopg2://``), is kept as it is;
    ``postgresql://`` with neither driver installed is an error saying what to install.
    """
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    raise ValueError(
        "--storage postgresql://...: PostgreSQL needs the psycopg driver, which is not "
        "installed; pip install 'snt-search[postgres]' (or pip install 'psycopg[binary]')"
    )


def _begin_immediate(storage: RDBStorage) -> None:
    """Make every SQLite transaction take the write lock up front (SQLAlchemy's recipe)."""
    from sqlalchemy import event

    engine = storage.engine

    @event.listens_for(engine, "connect")
    def _no_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        if engine.url.database not in (None, "", ":memory:"):
            # Write-ahead log: readers never wait for the writer, and a commit appends to the
            # log without an fsync of the database (still safe if a process is killed).
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed are dropped


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal-file storage whose running trials beat, like an RDB storage's.

    Contract (Optuna's ``BaseHeartbeat``): ``record_heartbeat`` stamps the trial with the
    current time; ``_get_stale_trial_ids`` returns the RUNNING trials of a study whose last
    stamp (or start, whichever is later) is more than ``grace_period`` seconds old. Trials
    that never beat (written by a client without heartbeats) are never stale.
    """

    def __init__(
        self,
        backend: JournalFileBackend,
        *,
        heartbeat_interval: int,
        grace_period: int,
        heartbeat_stale_trial_callback: StaleCallback | None = None,
    ) -> None:
        super().__init__(backend)
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._stale_callback = heartbeat_stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # the trial just finished (or another worker failed it): nothing to keep alive

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None:
                continue
            started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            if now - max(float(beat), started) > self._grace_period:
                stale.append(storage_id(trial))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> StaleCallback | None:
        return self._stale_callback

    def get_failed_trial_callback(self) -> StaleCallback | None:  # Optuna < 4.9 asks this
        return self._stale_callback
