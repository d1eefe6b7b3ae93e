"""`snt-search pareto` says per front trial whether its models are stored (yes/no/removed)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from snt_search.cli import main
from snt_search.driver import StudyOptions, run_study
from snt_search.export.artifacts import REMOVED_ATTR
from snt_search.space import load_space


def _front(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["pareto", "--study-name", "tiny", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_pareto_models_column_follows_what_the_study_stored(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    space = load_space(tiny_space)
    run_study(space, StudyOptions(n_trials=2, show_progress=False, keep_models="none"))
    rows = _front(capsys)
    assert rows and {r["models"] for r in rows} == {"no"}

    run_study(space, StudyOptions(n_trials=4, show_progress=False, keep_models="all"))
    rows = _front(capsys)
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    stored = {t.number for t in study.trials if t.user_attrs.get("model_artifacts")}
    assert stored == {2, 3}
    assert {r["trial"]: r["models"] for r in rows} == {
        r["trial"]: "yes" if r["trial"] in stored else "no" for r in rows
    }

    # a trial listed as removed by --keep-models front says so
    study.set_user_attr(REMOVED_ATTR, [rows[0]["trial"]])
    assert _front(capsys)[0]["models"] == "removed"

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["pareto", "--study-name", "tiny"]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.lstrip().startswith("trial"))
    assert "models" in header
    assert max(len(line) for line in text.splitlines()) <= 80
