"""A three-objective study (accuracy drop x model bytes x lambda_max) end to end: the measured
compressed-model metrics, a compressor's declared report key as a constraint, the pareto
command, the stored front and the report."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from snt_search.cli import main
from snt_search.driver import StudyOptions, run_study
from snt_search.pareto import front_trials
from snt_search.space import SpaceError, load_space

OBJECTIVES = (
    'lambda_max = "minimize"\naccuracy_drop = "minimize"\n',
    'accuracy_drop = "minimize"\nmodel_bytes = "minimize"\nlambda_max = "minimize"\n',
)


def _three(tiny_space: Path, constraint: str = "sparsity = { min = 0.1 }") -> Path:
    text = tiny_space.read_text()
    assert OBJECTIVES[0] in text
    text = text.replace(OBJECTIVES[0], OBJECTIVES[1])
    text = text.replace(
        '"compressor.magnitude_prune.sparsity" = 0.5',
        '"compressor.magnitude_prune.sparsity" = { low = 0.2, high = 0.9 }',
    )
    tiny_space.write_text(text + f"\n[constraints]\n{constraint}\n")
    return tiny_space


def test_a_three_objective_study_runs_and_every_view_shows_all_objectives(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = load_space(_three(tiny_space))
    assert list(space.objectives) == ["accuracy_drop", "model_bytes", "lambda_max"]
    run_study(space, StudyOptions(n_trials=4, show_progress=False, keep_models="none"))
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 4 and all(len(t.values) == 3 for t in done)
    for t in done:
        a = t.user_attrs
        assert a["model_bytes"] == t.values[1] > 0
        assert 0 < a["params"] < a["n_params"]  # pruned: fewer non-zero parameters
        assert a["param_reduction"] == pytest.approx(1 - a["params"] / a["n_params"])
        assert a["sparsity"] == a["compression_report"]["sparsity"]  # declared report key
        assert a["latency_ms"] > 0
    front = {t.number for t in front_trials(study.trials, study.directions)}
    assert set(study.user_attrs["pareto_front"]) == front and front

    assert main(["pareto", "--study-name", "tiny", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["trial"] for r in rows} == front
    assert all({"accuracy_drop", "model_bytes", "lambda_max"} <= set(r) for r in rows)
    assert main(["pareto", "--study-name", "tiny"]) == 0
    text = capsys.readouterr().out
    assert "drop" in text and "model_bytes" in text and "λ_max" in text

    assert main(["report", "--study-name", "tiny", "--out", "report"]) == 0
    html = (workdir / "report" / "report.html").read_text()
    assert "two at a time" in html  # the paired view of three objectives
    assert "compressed model (bytes stored)" in html


def test_a_report_key_only_some_candidate_compressors_declare_is_refused(
    tiny_space: Path,
) -> None:
    path = _three(tiny_space)
    path.write_text(
        path.read_text().replace(
            'compressor = "magnitude_prune"', 'compressor = ["magnitude_prune", "ptq"]'
        )
    )
    with pytest.raises(SpaceError, match=r"\[constraints\] unknown metric 'sparsity'"):
        load_space(path)
