"""Two worker processes on one PostgreSQL study share one artifact store: every finished
trial's models are reachable and export works for the trials of either worker."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from test_storages import pg_url  # noqa: F401  (the fixture: a fresh PostgreSQL database)

from snt_search import load_model
from snt_search.cli import main
from snt_search.driver import StudyOptions, run_study
from snt_search.export.artifacts import ARTIFACTS_ATTR, STORE_ATTR
from snt_search.optuna_compat import study_storage
from snt_search.space import load_space
from snt_search.storage import open_storage

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used"),
]


def test_two_workers_on_postgresql_share_one_artifact_store(
    tiny_space: Path,
    workdir: Path,
    pg_url: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = StudyOptions(
        n_trials=4, storage=pg_url, workers=2, show_progress=False, keep_models="all"
    )
    outcome = run_study(load_space(tiny_space), options)
    assert outcome.problems == []
    storage = open_storage(pg_url)
    study = optuna.load_study(study_name="tiny", storage=storage)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 4
    workers = {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2, workers  # both processes finished trials
    store = workdir / "runs/tiny/artifacts"
    for t in done:
        ids = t.user_attrs[ARTIFACTS_ATTR]
        assert t.user_attrs[STORE_ATTR] == str(store)
        assert set(ids) == {"trained", "compressed"}
        assert all((store / i).is_file() for i in ids.values())
        linked = {m.artifact_id for m in get_all_artifact_meta(t, storage=study_storage(study))}
        assert linked == set(ids.values())
    for worker in sorted(workers):  # a trial of each worker, exported from the shared store
        t = next(t for t in done if t.user_attrs["worker"] == worker)
        out = workdir / f"t{t.number}"
        argv = ["export", "--storage", pg_url, "--study-name", "tiny", "--trial", str(t.number)]
        assert main([*argv, "--out", str(out), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["trial"] == t.number
        assert load_model(out) is not None
    if hasattr(storage, "engine"):
        storage.engine.dispose()
