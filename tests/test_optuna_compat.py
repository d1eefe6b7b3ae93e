"""Each private piece of Optuna that snt-search uses, exercised against the installed Optuna.

snt-search reaches them only through :mod:`snt_search.optuna_compat`; a release that moves,
renames or changes one fails the test named after it here. The last test keeps every other
module off Optuna's private API.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.storages import InMemoryStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

from snt_search import optuna_compat
from snt_search.optuna_compat import (
    TRIAL_LOGGER,
    ArtifactStore,
    BaseHeartbeat,
    compute_hypervolume,
    constraint_values,
    set_constraints_attr,
    stored_trial,
    study_storage,
    trial_id,
)
from snt_search.storage import HeartbeatJournalStorage

PACKAGE = Path(optuna_compat.__file__).parent


def test_trial_id_is_the_storage_id_not_the_number() -> None:
    storage = InMemoryStorage()  # trial ids count across studies, numbers per study
    optuna.create_study(storage=storage, study_name="a").ask()
    study = optuna.create_study(storage=storage, study_name="b")
    trial = study.ask()
    (frozen,) = study.get_trials()
    assert trial.number == 0 and trial_id(trial) == trial_id(frozen) == 1
    assert storage.get_trial(trial_id(trial)).number == 0


def test_study_storage_is_the_one_the_study_uses() -> None:
    storage = InMemoryStorage()
    study = optuna.create_study(storage=storage)
    assert study_storage(study) is storage


def test_stored_trial_reads_what_the_storage_holds_now() -> None:
    study = optuna.create_study()
    trial = study.ask()
    study_storage(study).set_trial_system_attr(trial_id(trial), "failed_trial", 7)
    assert stored_trial(trial).system_attrs["failed_trial"] == 7


def test_compute_hypervolume_of_a_known_front() -> None:
    ref = np.array([3.0, 3.0])
    front = np.array([[1.0, 2.0], [2.0, 1.0]])
    assert compute_hypervolume(front, ref) == pytest.approx(3.0)
    with_dominated = np.vstack([front, [[2.5, 2.5]]])  # need not be non-dominated
    assert compute_hypervolume(with_dominated, ref) == pytest.approx(3.0)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_base_heartbeat_contract_is_the_journal_storages(tmp_path: Path) -> None:
    assert BaseHeartbeat.__abstractmethods__ == {
        "record_heartbeat",
        "_get_stale_trial_ids",
        "get_heartbeat_interval",
        "get_heartbeat_stale_trial_callback",
    }
    failed: list[int] = []
    storage = HeartbeatJournalStorage(
        JournalFileBackend(str(tmp_path / "s.log")),
        heartbeat_interval=1,
        grace_period=0,
        heartbeat_stale_trial_callback=lambda study, t: failed.append(t.number),
    )
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    storage.record_heartbeat(trial_id(trial))
    time.sleep(0.01)  # the beat is now older than the grace period (0 s)
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        optuna.storages.fail_stale_trials(study)  # Optuna's sweep calls our override
    assert study.trials[0].state == TrialState.FAIL and failed == [0]


def test_artifact_store_is_optunas_protocol_of_its_stores(tmp_path: Path) -> None:
    from optuna.artifacts import FileSystemArtifactStore

    assert getattr(ArtifactStore, "_is_protocol", False)  # not the Any fallback
    methods = {"open_reader", "write", "remove"}
    assert methods <= set(vars(ArtifactStore))
    store = FileSystemArtifactStore(str(tmp_path))
    assert all(callable(getattr(store, m)) for m in methods)


def test_link_artifact_records_a_stored_file_as_upload_artifact_would(tmp_path: Path) -> None:
    from optuna.artifacts import (
        FileSystemArtifactStore,
        download_artifact,
        get_all_artifact_meta,
    )

    from snt_search.optuna_compat import link_artifact

    store = FileSystemArtifactStore(str(tmp_path))
    (tmp_path / "src").write_bytes(b"weights")
    with open(tmp_path / "src", "rb") as fh:
        store.write("abc-123", fh)  # as a Ray worker writes it, with no study at hand
    study = optuna.create_study()
    trial = study.ask()
    link_artifact(study, trial.number, "abc-123", "trained.safetensors")  # before tell: a
    study.tell(trial, 1.0)  # finished trial's system attributes are read-only
    (meta,) = get_all_artifact_meta(study.trials[0], storage=study_storage(study))
    assert (meta.artifact_id, meta.filename) == ("abc-123", "trained.safetensors")
    download_artifact(artifact_store=store, file_path=str(tmp_path / "out"), artifact_id="abc-123")
    assert (tmp_path / "out").read_bytes() == b"weights"


def test_trial_logger_is_where_optuna_warns_of_a_failed_trial() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger(TRIAL_LOGGER)
    logger.addHandler(handler)
    try:
        study = optuna.create_study()

        def boom(trial: optuna.Trial) -> float:
            raise ValueError("boom")

        study.optimize(boom, n_trials=1, catch=(ValueError,))
    finally:
        logger.removeHandler(handler)
    assert any(r.getMessage().startswith("Trial 0 failed") for r in records)


def test_constraint_values_of_both_stored_formats() -> None:
    study = optuna.create_study(directions=["minimize"])

    def constrained(trial: optuna.Trial) -> float:
        trial.set_constraint("acc>=50", 3.0)
        return 1.0

    study.optimize(constrained, n_trials=1)
    study.add_trial(create_trial(value=1.0, system_attrs={"constraints": [1.0, -2.0]}))
    study.add_trial(create_trial(value=1.0))
    assert [constraint_values(t) for t in study.trials] == [
        {"acc>=50": 3.0},
        {"0": 1.0, "1": -2.0},
        {},
    ]


def test_set_constraints_attr_writes_the_format_optuna_reads() -> None:
    study = optuna.create_study()
    trial = study.ask()
    set_constraints_attr(trial, {"acc>=50": 2.0, "time<=60": -1.0})
    study.tell(trial, 1.0)
    assert constraint_values(study.trials[0]) == {"0": 2.0, "1": -1.0}
    assert study.best_trials == []  # Optuna reads it: the trial is infeasible


def test_a_missing_private_attribute_names_the_helper_and_the_fix() -> None:
    with pytest.raises(AttributeError, match=r"Study\._storage.*optuna_compat\.study_storage"):
        study_storage(object())  # type: ignore[arg-type]


PRIVATE_USE = re.compile(
    r"\._trial_id\b|\._study_id\b|\._storage\b|optuna\._|optuna\.\w+\._|storages\._"
)


def test_no_other_module_reaches_into_optuna() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "optuna_compat.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE_USE.search(line)
    ]
    assert found == [], "use snt_search.optuna_compat instead:\n" + "\n".join(found)
