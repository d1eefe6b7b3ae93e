"""--callback module:object: Optuna callbacks from the command line, on both drivers."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import optuna
import pytest

from snt_search.callbacks import CallbackError, load_callback
from snt_search.cli import main
from snt_search.driver import StudyOptions
from snt_search.ray.record import STATE_ATTR
from snt_search.ray.searcher import StudySearcher
from snt_search.ray.trainable import RESULT_KEY
from snt_search.space import load_space

MODULE = """
import json, os

seen = []


def record(study, trial):
    with open(os.environ["CB_LOG"], "a") as fh:
        fh.write(json.dumps({"study": study.study_name, "trial": trial.number,
                             "state": trial.state.name}) + "\\n")


def broken(study, trial):
    raise RuntimeError("tracker unreachable")


class Counter:
    def __call__(self, study, trial):
        seen.append(trial.number)


class NeedsArgs:
    def __init__(self, project):
        self.project = project

    def __call__(self, study, trial):
        pass


not_callable = 3
"""


@pytest.fixture
def cbmod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "cbmod.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))  # worker processes import it too
    monkeypatch.setenv("CB_LOG", str(tmp_path / "cb.log"))
    sys.modules.pop("cbmod", None)
    return tmp_path / "cb.log"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cbmod", r"--callback cbmod: write MODULE:OBJECT"),
        ("nope_mod:cb", r"cannot import module 'nope_mod' \(ModuleNotFoundError"),
        ("cbmod:recrod", r"'cbmod' has no attribute 'recrod'; it defines: .*record"),
        ("cbmod:not_callable", r"not_callable is a int, not callable"),
        ("cbmod:NeedsArgs", r"NeedsArgs is a class that needs arguments"),
    ],
)
def test_a_bad_callback_names_the_option_and_the_fix(cbmod: Path, spec: str, message: str) -> None:
    with pytest.raises(CallbackError, match=message):
        load_callback(spec)


def test_a_module_in_the_working_folder_is_found(workdir: Path) -> None:
    (workdir / "cb_here.py").write_text("def cb(study, trial):\n    pass\n")
    sys.modules.pop("cb_here", None)
    assert callable(load_callback("cb_here:cb"))


def test_a_class_is_instantiated(cbmod: Path) -> None:
    callback = load_callback("cbmod:Counter")
    callback(None, optuna.trial.create_trial(value=1.0))  # type: ignore[arg-type]
    assert sys.modules["cbmod"].seen == [-1]  # create_trial leaves the number unset (-1)


def test_the_local_driver_calls_it_after_each_trial(
    cbmod: Path, tiny_space: Path, workdir: Path
) -> None:
    code = main(
        ["study", "--space", str(tiny_space), "--trials", "2", "--callback", "cbmod:record"]
    )
    assert code == 0
    lines = [json.loads(line) for line in cbmod.read_text().splitlines()]
    assert [(x["trial"], x["state"]) for x in lines] == [(0, "COMPLETE"), (1, "COMPLETE")]


def test_a_bad_callback_fails_before_the_first_trial(
    cbmod: Path, tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["study", "--space", str(tiny_space), "--callback", "cbmod:recrod"])
    assert code == 2 and "--callback cbmod:recrod" in capsys.readouterr().err
    study_names = (
        optuna.get_all_study_names("sqlite:///snt-search.db")
        if Path("snt-search.db").exists()
        else []
    )
    assert not any(
        optuna.load_study(study_name=n, storage="sqlite:///snt-search.db").trials
        for n in study_names
    )


def test_a_raising_callback_stops_the_study_after_storing_the_trial(
    cbmod: Path, tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["study", "--space", str(tiny_space), "--trials", "2", "--callback", "cbmod:broken"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--callback cbmod:broken raised RuntimeError: tracker unreachable" in err
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE"]


def _searcher(tiny_space: Path, spec: str) -> StudySearcher:
    options = StudyOptions(n_trials=3, show_progress=False, callbacks=(spec,))
    return StudySearcher(load_space(tiny_space), options, experiment="exp-1", target=3)


def _finish(searcher: StudySearcher, ray_id: str, number: int) -> None:
    outcome = {"metrics": {"lambda_max": 1.0 + number, "accuracy_drop": 2.0, "base_accuracy": 80.0}}
    searcher.on_trial_complete(
        ray_id, {"trial": number, "attempt": "a1", RESULT_KEY: json.dumps(outcome)}
    )


def test_the_ray_searcher_calls_it_and_a_raising_one_aborts(
    cbmod: Path, tiny_space: Path, workdir: Path
) -> None:
    searcher = pickle.loads(pickle.dumps(_searcher(tiny_space, "cbmod:record")))  # as Ray does
    for i in range(2):
        assert searcher.suggest(f"r{i}") is not None
        _finish(searcher, f"r{i}", i)
    assert [json.loads(x)["trial"] for x in cbmod.read_text().splitlines()] == [0, 1]
    pickle.dumps(searcher)  # loaded callbacks are not part of what Ray pickles

    broken = _searcher(tiny_space, "cbmod:broken")
    broken_config = broken.suggest("b0")
    assert broken_config is not None
    _finish(broken, "b0", broken_config["trial"])
    assert broken.suggest("b1") == "FINISHED"  # Ray's Searcher.FINISHED: the study stops
    assert "tracker unreachable" in broken.study.user_attrs[STATE_ATTR]["aborted"]
