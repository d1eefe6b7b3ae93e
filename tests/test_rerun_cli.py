"""`snt-search rerun`: a stored trial's whole pipeline run again reproduces its metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snt_search.cli import main
from snt_search.driver import StudyOptions, run_study
from snt_search.space import load_space


@pytest.fixture
def tiny_study(tiny_space: Path, workdir: Path) -> Path:
    run_study(
        load_space(tiny_space), StudyOptions(n_trials=2, show_progress=False, keep_models="none")
    )
    return workdir


def test_rerun_reproduces_the_stored_metrics_on_the_cpu(
    tiny_study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rerun", "--study-name", "tiny", "--trial", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["metric"]: r for r in out["metrics"]}
    for key in ("base_accuracy", "compressed_accuracy", "accuracy_drop", "lambda_max", "n_params"):
        assert rows[key]["same"] is True, rows[key]
        assert rows[key]["new"] == rows[key]["stored"]
    assert rows["train_time_s"]["same"] is None  # timings are shown, never compared
    assert out["reproduced"] is True and out["trial"] == 1
    assert out["config"]["plugins"]["compressor"] == "magnitude_prune"


def test_rerun_table_reads_at_80_columns(
    tiny_study: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    from snt_search.cli import _common

    monkeypatch.setattr(_common.console, "_width", 80)
    assert main(["rerun", "--study-name", "tiny", "--trial", "0"]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "stored" in text and "re-run" in text and "lambda_max" in text
    assert "every compared metric reproduced" in text


def test_rerun_of_an_unknown_trial_or_study_is_a_one_line_error(
    tiny_study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rerun", "--study-name", "tiny", "--trial", "9"]) == 2
    assert "has no such trial (trials: 0..1)" in capsys.readouterr().err
    assert main(["rerun", "--study-name", "nope", "--trial", "0"]) == 2
    assert "studies there: tiny" in capsys.readouterr().err
