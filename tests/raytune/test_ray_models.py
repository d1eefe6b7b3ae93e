"""Trials run by the Ray trainable keep their models like local ones: written by the worker to
the shared store, linked by the searcher, exportable; --keep-models front applies. Without a
cluster: the trainable's outcome (``_outcome``, what ``train_on_ray`` reports) is fed to the
searcher as Ray would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import TINY_SPACE
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState

from snt_search.cli import main
from snt_search.driver import StudyOptions
from snt_search.export.artifacts import ARTIFACTS_ATTR, MISSING_ATTR, REMOVED_ATTR, STORE_ATTR
from snt_search.optuna_compat import study_storage
from snt_search.pareto import front_trials
from snt_search.ray.searcher import StudySearcher
from snt_search.ray.trainable import RESULT_KEY, _outcome
from snt_search.space import load_space

from .conftest import Sandbox, finish

STORAGE = "sqlite:///s.db"


def _run(searcher: StudySearcher, name: str, work: Path) -> dict[str, Any]:
    config = searcher.suggest(name)
    assert config is not None
    outcome = _outcome(config, config["spec"], work / f"{name}.safetensors", lambda s: None, [])
    report = {"trial": config["trial"], "attempt": name, RESULT_KEY: json.dumps(outcome)}
    searcher.on_trial_complete(name, report)
    return outcome


def _searcher(tiny_space: Path, keep: str, target: int) -> StudySearcher:
    options = StudyOptions(n_trials=target, storage=STORAGE, show_progress=False, keep_models=keep)
    return StudySearcher(load_space(tiny_space), options, experiment="e", target=target)


def test_ray_trials_store_their_models_and_export_works(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    searcher = _searcher(tiny_space, "all", 2)
    for name in ("r1", "r2"):
        outcome = _run(searcher, name, workdir)
        assert set(outcome["models"]["artifacts"]) == {"trained", "compressed"}
    study = optuna.load_study(study_name="tiny", storage=STORAGE)
    store = workdir / "runs/tiny/artifacts"
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        ids = t.user_attrs[ARTIFACTS_ATTR]
        assert t.user_attrs[STORE_ATTR] == str(store)
        assert all((store / i).is_file() for i in ids.values())
        metas = get_all_artifact_meta(t, storage=study_storage(study))  # optuna-dashboard's view
        assert {m.artifact_id: m.filename for m in metas} == {
            i: f"{w}.safetensors" for w, i in ids.items()
        }
    argv = ["export", "--storage", STORAGE, "--study-name", "tiny", "--trial", "1", "--out", "m"]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["which"] == "compressed"
    assert (workdir / "m" / "model.safetensors").is_file()


def test_keep_models_front_applies_to_ray_trials(tiny_space: Path, workdir: Path) -> None:
    searcher = _searcher(tiny_space, "front", 4)
    for name in ("r1", "r2", "r3", "r4"):
        _run(searcher, name, workdir)
    study = optuna.load_study(study_name="tiny", storage=STORAGE)
    front = {t.number for t in front_trials(study.trials, study.directions)}
    store = workdir / "runs/tiny/artifacts"
    removed = set(study.user_attrs.get(REMOVED_ATTR) or [])
    kept_files = set()
    for t in study.trials:
        ids = t.user_attrs.get(ARTIFACTS_ATTR) or {}
        if t.number in front:
            assert ids and all((store / i).is_file() for i in ids.values()), t.number
            kept_files |= set(ids.values())
        else:  # never linked (off the front when it finished) or removed later
            assert (MISSING_ATTR in t.user_attrs and not ids) or t.number in removed
    assert {p.name for p in store.iterdir()} == kept_files  # nothing left behind


def test_a_store_the_worker_cannot_write_fails_the_trial_with_the_reason(
    tiny_space: Path, workdir: Path
) -> None:
    (workdir / "blocked").write_text("a file, not a folder")
    options = StudyOptions(
        n_trials=1, storage=STORAGE, show_progress=False, artifacts=str(workdir / "blocked")
    )
    searcher = StudySearcher(load_space(tiny_space), options, experiment="e", target=1)
    outcome = _run(searcher, "r1", workdir)
    assert outcome["unexpected"] is True
    (t,) = optuna.load_study(study_name="tiny", storage=STORAGE).trials
    assert t.state == TrialState.FAIL
    assert "could not store the trial's models in" in t.user_attrs["fail_reason"]


@pytest.mark.timing
def test_a_sandboxed_ray_study_keeps_the_fronts_models(sandbox: Sandbox) -> None:
    """The whole path on a real (single-node, loopback-only) Ray: --keep-models front."""
    (sandbox.folder / "space.toml").write_text(TINY_SPACE)
    result = finish(sandbox.start("--trials", "2"), timeout=300)
    assert result["finished"] == 2 and result["failed"] == 0
    url = f"sqlite:///{sandbox.folder / 'study.db'}"
    study = optuna.load_study(study_name="tiny", storage=url)
    front = {t.number for t in front_trials(study.trials, study.directions)}
    assert front, [t.user_attrs.get("off_front_reason") for t in study.trials]
    store = sandbox.folder / "runs/tiny/artifacts"
    for t in study.trials:
        ids = t.user_attrs.get(ARTIFACTS_ATTR) or {}
        if t.number in front:
            assert set(ids) == {"trained", "compressed"}, t.user_attrs
            assert all((store / i).is_file() for i in ids.values())
            metas = get_all_artifact_meta(t, storage=study_storage(study))
            assert {m.artifact_id for m in metas} == set(ids.values())
