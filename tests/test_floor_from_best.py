"""[constraints] metric = { min_from_best = X }: an accuracy floor relative to the best trial,
applied wherever the front is computed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from snt_search.driver import StudyOptions, run_study
from snt_search.pareto import front_trials, within_floors
from snt_search.pipeline import TrialResult
from snt_search.space import SpaceError, load_space


def test_within_floors_keeps_trials_close_to_the_best() -> None:
    trials = [
        optuna.trial.create_trial(values=[float(i), 1.0], user_attrs={"base_accuracy": a})
        for i, a in enumerate([90.0, 80.0, 86.0, 85.0])
    ]
    kept = within_floors(trials, {"base_accuracy": 5.0})
    assert [t.user_attrs["base_accuracy"] for t in kept] == [90.0, 86.0, 85.0]
    assert within_floors(trials, {}) == trials
    missing = [*trials, optuna.trial.create_trial(values=[9.0, 1.0])]
    assert len(within_floors(missing, {"base_accuracy": 50.0})) == 4  # no metric: dropped


@pytest.mark.parametrize(
    ("bound", "message"),
    [
        ("{ min_from_best = -1.0 }", r"base_accuracy.min_from_best must be >= 0"),
        ("{ from_best = 5.0 }", r"must be a table with min, max and/or min_from_best"),
        ('{ min_from_best = "5" }', r"base_accuracy.min_from_best must be a number"),
    ],
)
def test_a_bad_floor_names_the_key(tiny_space: Path, bound: str, message: str) -> None:
    tiny_space.write_text(tiny_space.read_text() + f"\n[constraints]\nbase_accuracy = {bound}\n")
    with pytest.raises(SpaceError, match=message):
        load_space(tiny_space)


def test_the_front_of_a_study_leaves_out_trials_far_below_the_best(
    tiny_space: Path, workdir: Path
) -> None:
    """Four trials that trade lambda_max for drop (all on the plain front); the one 10 points
    below the best base accuracy is left off with min_from_best = 5."""
    tiny_space.write_text(
        tiny_space.read_text() + "\n[constraints]\nbase_accuracy = { min_from_best = 5.0 }\n"
    )
    space = load_space(tiny_space)
    accuracies = iter([90.0, 80.0, 86.0, 88.0])
    lams = iter([4.0, 1.0, 3.0, 2.0])

    def fake(spec: Any, **kwargs: Any) -> TrialResult:
        lam = next(lams)
        return TrialResult(
            metrics={
                "lambda_max": lam,
                "accuracy_drop": 5.0 - lam,
                "base_accuracy": next(accuracies),
            }
        )

    run_study(space, StudyOptions(n_trials=4, show_progress=False), runner=fake)
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    assert study.user_attrs["floors_from_best"] == {"base_accuracy": 5.0}
    assert [t.user_attrs["base_accuracy"] for t in front_trials(study)] == [90.0, 86.0, 88.0]
    everything = front_trials(study.get_trials(), study.directions)  # trials alone: no floors
    assert len(everything) == 4
