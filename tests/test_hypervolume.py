"""Hypervolume, its stored history, and constraints keeping trials off the front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import TINY_SPACE
from optuna.study import StudyDirection
from test_storages import quick_runner

from snt_search import hypervolume
from snt_search.driver import StudyOptions, run_study
from snt_search.space import load_space


def test_hypervolume_of_known_fronts() -> None:
    ref = np.array([3.0, 3.0])
    assert hypervolume.hypervolume([np.array([1.0, 2.0]), np.array([2.0, 1.0])], ref) == 3.0
    assert hypervolume.hypervolume([np.array([4.0, 1.0])], ref) == 0.0  # beyond the reference
    assert hypervolume.hypervolume([], ref) == 0.0
    got = hypervolume.reference_point([np.array([0.0, 10.0]), np.array([1.0, 20.0])])
    assert got == pytest.approx([1.1, 21.0])


def test_history_is_monotone_and_handles_maximize() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    for x, y in [(3.0, 1.0), (2.0, 2.0), (5.0, 0.5), (1.0, 3.0), (1.5, 2.5)]:
        study.add_trial(optuna.trial.create_trial(values=[x, y]))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    history, ref = hypervolume.history(study)
    values = [h["hypervolume"] for h in history]
    assert [h["trial"] for h in history] == [0, 1, 2, 3, 4]
    assert values == sorted(values) and values[0] > 0
    assert ref is not None and ref[1] < 0  # "maximize" is negated: the worst y is -0.5
    fixed, _ = hypervolume.history(
        study.trials, [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE], np.array([6.0, 0.0])
    )
    assert fixed[0]["hypervolume"] == pytest.approx((6 - 3) * 1.0)


@pytest.mark.parametrize(("floor", "on_front"), [(101.0, False), (10.0, True)])
def test_constraints_keep_infeasible_trials_off_the_front(
    tiny_space: Path, workdir: Path, floor: float, on_front: bool
) -> None:
    tiny_space.write_text(TINY_SPACE + f"\n[constraints]\nbase_accuracy = {{ min = {floor} }}\n")
    outcome = run_study(
        load_space(tiny_space), StudyOptions(n_trials=3, show_progress=False), runner=quick_runner
    )
    assert outcome.finished == 3 and bool(outcome.front) is on_front
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    assert bool(study.best_trials) is on_front
    name = f"constraints:base_accuracy>={floor:g}"
    assert all(t.system_attrs[name] == pytest.approx(floor - 50.0) for t in study.trials)
    assert bool(study.user_attrs["hypervolume_history"]) is on_front
