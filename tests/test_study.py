"""The study command end to end on synthetic data, with a real SQLite storage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from snt_search.cli import main
from snt_search.driver import StudyOptions, run_study
from snt_search.pipeline import TrialFailed
from snt_search.space import SpaceError, load_space


def test_study_end_to_end_then_reopened_and_resumed(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["study", "--space", str(tiny_space), "--trials", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["study_name"] == "tiny" and out["ran"] == 2 and out["finished"] == 2

    # Reopen the storage from scratch, as the dashboard or another process would.
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    trials = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(trials) == 2
    for t in trials:
        lam, drop = t.values
        attrs = t.user_attrs
        assert math.isfinite(lam) and lam == attrs["lambda_max"]
        assert drop == pytest.approx(attrs["base_accuracy"] - attrs["compressed_accuracy"])
        assert 0 <= attrs["base_accuracy"] <= 100
        assert attrs["sharpness_report"]["method"] == "lanczos"
        assert attrs["sharpness_report"]["samples"] == 32
        assert (
            "converged" in attrs["sharpness_report"]
            and attrs["sharpness_report"]["iterations"] >= 1
        )
        assert attrs["compression_report"]["sparsity"] == pytest.approx(0.5, abs=0.02)
        assert attrs["train_time_s"] > 0 and attrs["n_params"] > 0
        assert len(attrs["curve"]) == 1 and attrs["curve"][0]["epoch"] == 1
        assert attrs["config"]["plugins"]["backbone"] == "mixer_s"
    front_numbers = {r["trial"] for r in out["pareto_front"]}
    assert front_numbers == {t.number for t in study.best_trials}
    assert study.user_attrs["pareto_front"] == sorted(front_numbers)
    assert json.loads((workdir / "runs/tiny/pareto.json").read_text()) == out["pareto_front"]
    assert (
        (workdir / "runs/tiny/pareto.csv").read_text().startswith("trial,lambda_max,accuracy_drop")
    )

    # The same command resumes: nothing re-runs; asking for more runs only the missing ones.
    assert main(["study", "--space", str(tiny_space), "--trials", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ran"] == 0
    assert main(["study", "--space", str(tiny_space), "--trials", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ran"] == 1
    assert len(optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db").trials) == 3

    # The stored front is what `pareto` shows.
    assert main(["pareto", "--study-name", "tiny", "--json"]) == 0
    assert {r["trial"] for r in json.loads(capsys.readouterr().out)} == {
        t.number
        for t in optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db").best_trials
    }


def test_resuming_with_another_space_or_budget_is_refused(tiny_space: Path, workdir: Path) -> None:
    space = load_space(tiny_space)
    run_study(space, StudyOptions(n_trials=1, show_progress=False))
    other = space.with_overrides({}, {"train.lr": 0.002})
    with pytest.raises(
        SpaceError, match="was made with space_fingerprint .* pass --study-name NEW"
    ):
        run_study(other, StudyOptions(n_trials=1, show_progress=False))
    run_study(other, StudyOptions(n_trials=1, study_name="tiny-lr", show_progress=False))


def test_failed_trials_are_recorded_with_reason_and_the_study_goes_on(
    tiny_space: Path, workdir: Path
) -> None:
    space = load_space(tiny_space)
    calls = []

    def flaky(spec, **kwargs):  # type: ignore[no-untyped-def]
        from snt_search.pipeline import run_trial

        calls.append(spec)
        if len(calls) == 1:
            raise TrialFailed("diverged: training loss became nan at epoch 1, step 3")
        return run_trial(spec, **kwargs)

    outcome = run_study(space, StudyOptions(n_trials=2, show_progress=False), runner=flaky)
    assert outcome.failed == 1 and outcome.finished == 1
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    failed = study.get_trials(states=[optuna.trial.TrialState.FAIL])
    assert (
        failed[0]
        .user_attrs["fail_reason"]
        .startswith("TrialFailed: diverged: training loss became nan")
    )
    assert all(t.number != failed[0].number for t in study.best_trials)  # never in the front


def test_divergence_is_a_failed_trial_not_a_result(tiny_space: Path, workdir: Path) -> None:
    space = load_space(tiny_space).with_overrides({"optimizer": "adam"}, {"train.lr": 1e30})
    outcome = run_study(space, StudyOptions(n_trials=1, show_progress=False))
    assert outcome.failed == 1 and outcome.finished == 0 and outcome.front == []
    trial = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db").trials[0]
    assert "diverged" in trial.user_attrs["fail_reason"]


def test_sweep_curve_is_recorded_and_can_be_the_objective(tiny_space: Path, workdir: Path) -> None:
    text = tiny_space.read_text().replace(
        'accuracy_drop = "minimize"', 'sweep_accuracy_drop = "minimize"'
    )
    text += '\n[sweep]\ncompressor = "magnitude_prune"\nsparsities = [0.0, 0.5, 0.9]\n'
    tiny_space.write_text(text)
    outcome = run_study(load_space(tiny_space), StudyOptions(n_trials=1, show_progress=False))
    assert outcome.finished == 1
    trial = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db").trials[0]
    curve = trial.user_attrs["sweep_report"]
    assert curve["compressor"] == "magnitude_prune" and len(curve["accuracies"]) == 3
    assert curve["sparsities"] == pytest.approx([0.0, 0.5, 0.9], abs=0.02)
    assert curve["accuracies"][0] == pytest.approx(
        trial.user_attrs["base_accuracy"]
    )  # 0% = unpruned
    assert trial.values[1] == pytest.approx(
        trial.user_attrs["base_accuracy"] - curve["mean_accuracy"]
    )

    from snt_search.report.data import load_study_data  # the report draws the stored curve

    row = next(
        r
        for r in load_study_data("sqlite:///snt-search.db", "tiny").trials
        if r.number == trial.number
    )
    assert row.sweep is not None and list(row.sweep.ys) == pytest.approx(curve["accuracies"])


def test_journal_storage(tiny_space: Path, workdir: Path) -> None:
    outcome = run_study(
        load_space(tiny_space),
        StudyOptions(n_trials=1, storage="journal:j.log", show_progress=False),
    )
    assert outcome.finished == 1 and (workdir / "j.log").exists()
