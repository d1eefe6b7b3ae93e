"""Worker processes on real storages: SQLite, PostgreSQL and a journal file.

N workers x M trials give exactly N*M finished trials, none lost or duplicated; a worker
killed with SIGKILL mid-trial leaves no trial RUNNING once its heartbeat is stale, and the
same command then finishes the study, the killed trial resumed from its checkpoint.
PostgreSQL runs on 127.0.0.1:5432 (trust auth) here and in CI; each test gets a fresh
database, dropped afterwards, reached through the plain ``postgresql://`` URL a user would
type (psycopg 3, as in optuna and optuna-dashboard).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import missing_service
from optuna.trial import TrialState

from snt_search.driver import StudyOptions, StudyOutcome, run_study
from snt_search.pipeline import TrialResult, run_trial
from snt_search.space import Space, load_space
from snt_search.storage import (
    HEARTBEAT_ATTR,
    StorageNotFound,
    _with_driver,
    open_existing_storage,
    open_storage,
)
from snt_search.trial_spec import TrialSpec

PG = {"host": "127.0.0.1", "port": 5432}
pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used"),
]


def _pg_admin() -> Any:
    psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is in the test extra")
    for user in ("postgres", "root"):
        try:
            conn = psycopg.connect(
                dbname="postgres", user=user, connect_timeout=3, autocommit=True, **PG
            )
        except psycopg.OperationalError:
            continue
        return conn, user
    missing_service("no PostgreSQL server on 127.0.0.1:5432 (CI starts one: see .ci/run)")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database as a plain ``postgresql://`` URL; dropped after."""
    conn, user = _pg_admin()
    name = f"snt_test_{uuid.uuid4().hex[:12]}"
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{user}@{PG['host']}:{PG['port']}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql", "journal"])
def storage_url(request: pytest.FixtureRequest, workdir: Path) -> Iterator[str]:
    """A fresh, empty storage of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{workdir / 'study.db'}"
    elif request.param == "journal":
        yield f"journal:{workdir / 'study.log'}"
    else:
        yield request.getfixturevalue("pg_url")


def quick_runner(spec: TrialSpec, **_: Any) -> TrialResult:
    """A no-op trial (the test is about the driver): objectives from the sampled lr."""
    lr = spec.train.lr
    return TrialResult(metrics={"lambda_max": lr, "accuracy_drop": 1.0 / lr, "base_accuracy": 50.0})


def slow_runner(spec: TrialSpec, *, on_epoch: Any = None, **kwargs: Any) -> TrialResult:
    """A real tiny trial that lingers a second after each epoch (after its checkpoint)."""

    def linger(stats: Any) -> None:
        if on_epoch is not None:
            on_epoch(stats)
        time.sleep(1.0)

    return run_trial(spec, on_epoch=linger, **kwargs)


def _space(tiny_space: Path, **params: Any) -> Space:
    return load_space(tiny_space).with_overrides({"optimizer": "adam"}, params)


def _trials(url: str, name: str = "tiny") -> list[optuna.trial.FrozenTrial]:
    """The study's trials, or none while it does not exist yet."""
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials()
    except KeyError:
        return []
    finally:
        if hasattr(storage, "engine"):
            storage.engine.dispose()


def test_n_workers_times_m_trials_exactly(tiny_space: Path, storage_url: str) -> None:
    workers, each = 2, 3
    options = StudyOptions(
        n_trials=workers * each, storage=storage_url, workers=workers, show_progress=False
    )
    outcome = run_study(_space(tiny_space), options, runner=quick_runner)
    assert outcome.ran == workers * each and outcome.problems == []
    trials = _trials(storage_url)
    assert Counter(t.state for t in trials) == {TrialState.COMPLETE: workers * each}
    assert sorted(t.number for t in trials) == list(range(workers * each))
    per_worker = Counter(t.user_attrs["worker"] for t in trials)
    assert sorted(per_worker.values()) == [each] * workers, per_worker
    assert len({t.params["train.lr"] for t in trials}) == workers * each  # no duplicate draws
    # Resuming with the same target runs nothing; the front and its history are stored.
    again = run_study(_space(tiny_space), options, runner=quick_runner)
    assert again.ran == 0 and len(_trials(storage_url)) == workers * each
    attrs = optuna.load_study(study_name="tiny", storage=open_storage(storage_url)).user_attrs
    assert attrs["pareto_front"] == [r["trial"] for r in outcome.front]
    assert attrs["hypervolume_history"] and attrs["hypervolume_reference"]


@pytest.mark.timing
def test_killed_worker_is_failed_by_heartbeat_and_resumed(
    tiny_space: Path, storage_url: str, workdir: Path
) -> None:
    space = _space(tiny_space, **{"train.epochs": 2})
    options = StudyOptions(
        n_trials=2,
        storage=storage_url,
        workers=2,
        show_progress=False,
        heartbeat_s=1,
        grace_s=3,
    )
    result: dict[str, StudyOutcome] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("first", run_study(space, options, runner=slow_runner))
    )
    thread.start()
    checkpoints = workdir / "runs" / "tiny" / "checkpoints"
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.2)
        for t in _trials(storage_url):
            ckpt = list(checkpoints.glob(f"tiny-trial{t.number:05d}-*.safetensors"))
            if t.state == TrialState.RUNNING and ckpt and "worker" in t.user_attrs:
                victim = t
                os.kill(int(t.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
                break
    thread.join(180)
    assert victim is not None, "no trial reached its first checkpoint"
    first = result["first"]
    assert any("killed by signal 9" in p for p in first.problems), first.problems

    time.sleep(options.grace_s + 1)  # let the dead worker's heartbeat go stale
    second = run_study(space, replace(options, workers=1), runner=slow_runner)
    assert second.problems == []
    trials = _trials(storage_url)
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] == 2 and TrialState.RUNNING not in states, states
    assert TrialState.WAITING not in states, states
    killed = next(t for t in trials if t.number == victim.number)
    assert killed.state == TrialState.FAIL and "fail_reason" not in killed.user_attrs
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.params
    assert retries[0].user_attrs["resumed_from_epoch"] >= 1  # it did not start over
    assert len(retries[0].user_attrs["curve"]) == 2
    # Every FAIL is a killed trial that was re-run; nothing else is lost or doubled.
    assert states[TrialState.FAIL] == 1
    assert not list(checkpoints.glob("*.safetensors"))  # finished trials clean up


@pytest.mark.timing
def test_journal_heartbeat_marks_only_stale_running_trials(workdir: Path) -> None:
    url = f"journal:{workdir / 'hb.log'}"
    storage = open_storage(url, heartbeat_s=1, grace_s=2)
    study = optuna.create_study(storage=storage, study_name="hb")
    beating, silent = study.ask(), study.ask()
    storage.record_heartbeat(beating._trial_id)  # type: ignore[attr-defined]
    stale_ids = storage._get_stale_trial_ids(study._study_id)  # type: ignore[attr-defined]
    assert stale_ids == []
    stamp = time.time() - 10
    storage.set_trial_system_attr(beating._trial_id, HEARTBEAT_ATTR, stamp)
    assert storage._get_stale_trial_ids(study._study_id) == []  # type: ignore[attr-defined]
    # started (datetime_start) just now, so a stale stamp alone is not enough: wait for grace
    time.sleep(2.2)
    stale_ids = storage._get_stale_trial_ids(study._study_id)  # type: ignore[attr-defined]
    assert stale_ids == [beating._trial_id]  # the silent trial never beat: never stale
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials()
    assert trials[beating.number].state == TrialState.FAIL
    assert trials[silent.number].state == TrialState.RUNNING
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == beating.number]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING


def test_storage_url_errors_name_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match="use sqlite:///file.db, postgresql://"):
        open_storage("redis://localhost")
    with pytest.raises(ValueError, match="grace period must be longer than the interval"):
        open_storage("sqlite:///x.db", heartbeat_s=10, grace_s=5)


def test_plain_postgresql_url_means_the_same_to_optuna(pg_url: str) -> None:
    """optuna-dashboard and the optuna CLI open ``RDBStorage(url)`` as it is: same driver,
    same database, same study."""
    ours = open_storage(pg_url)
    study = optuna.create_study(storage=ours, study_name="shared", directions=["minimize"] * 2)
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), [1.0, 2.0])
    theirs = optuna.storages.RDBStorage(pg_url)
    try:
        assert ours.engine.dialect.driver == theirs.engine.dialect.driver == "psycopg"  # type: ignore[attr-defined]
        trials = optuna.load_study(study_name="shared", storage=theirs).trials
        assert [t.values for t in trials] == [[1.0, 2.0]]
    finally:
        theirs.engine.dispose()
        ours.engine.dispose()  # type: ignore[attr-defined]


def _only(*present: str) -> Any:
    """A stand-in for ``importlib.util.find_spec`` that finds only the modules ``present``."""
    return lambda name, *a: object() if name in present else None


def test_postgresql_falls_back_to_psycopg2_only_without_psycopg(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "postgresql://u@db:5432/snt"
    monkeypatch.setattr(importlib.util, "find_spec", _only("psycopg", "psycopg2"))
    assert _with_driver(url) == url  # psycopg 3: SQLAlchemy's, optuna's and the dashboard's
    monkeypatch.setattr(importlib.util, "find_spec", _only("psycopg2"))
    assert _with_driver(url) == "postgresql+psycopg2://u@db:5432/snt"
    assert _with_driver("postgresql+psycopg://u@db/snt") == "postgresql+psycopg://u@db/snt"
    monkeypatch.setattr(importlib.util, "find_spec", _only())
    with pytest.raises(ValueError, match=r"pip install 'snt-search\[postgres\]'"):
        _with_driver(url)
    assert _with_driver("sqlite:///x.db") == "sqlite:///x.db"


def test_psycopg2_fallback_reaches_the_server(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg2", reason="the fallback needs psycopg2 (not in the test extra)")
    monkeypatch.setattr(importlib.util, "find_spec", _only("psycopg2"))
    storage = open_storage(pg_url)
    try:
        assert storage.engine.dialect.driver == "psycopg2"  # type: ignore[attr-defined]
        optuna.create_study(storage=storage, study_name="old-driver")
    finally:
        storage.engine.dispose()  # type: ignore[attr-defined]


def test_reading_an_empty_database_creates_no_tables(pg_url: str) -> None:
    with pytest.raises(StorageNotFound, match=r"holds no Optuna storage .* Fix: pass --storage"):
        open_existing_storage(pg_url)
    import psycopg  # the pg_url fixture made sure it is there

    with psycopg.connect(pg_url, connect_timeout=3) as db:
        tables = db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)
    open_storage(pg_url).engine.dispose()  # type: ignore[attr-defined]  # creates the tables
    open_existing_storage(pg_url).engine.dispose()  # type: ignore[attr-defined]
