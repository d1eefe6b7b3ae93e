"""Early stopping: an accuracy floor at an epoch, absolute or relative to the front."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from conftest import TINY_SPACE
from optuna.trial import TrialState

from snt_search.driver import StudyOptions, run_study
from snt_search.early_stop import EarlyStop, EarlyStopped, front_floor
from snt_search.space import SpaceError, load_space


def test_floor_is_checked_once_at_its_epoch() -> None:
    rule = EarlyStop(at_epoch=2, min_accuracy=30.0)
    rule.check(1, 5.0, None)  # too early: no verdict
    rule.check(3, 5.0, None)  # later epochs are not checked again
    rule.check(2, 30.0, None)
    with pytest.raises(EarlyStopped, match=r"early-stopped: test accuracy 29.00% < 30.00%"):
        rule.check(2, 29.0, None)
    with pytest.raises(EarlyStopped):
        rule.check(2, float("nan"), None)


def test_front_fraction_is_relative_to_the_front_at_that_epoch() -> None:
    curves = [[{"epoch": 1, "test_accuracy": 40.0}, {"epoch": 2, "test_accuracy": 60.0}]]
    curves.append([{"epoch": 1, "test_accuracy": 30.0}])
    assert front_floor(curves, 1) == 30.0 and front_floor(curves, 2) == 60.0
    assert front_floor(curves, 3) is None
    rule = EarlyStop(at_epoch=2, front_fraction=0.5)
    rule.check(2, 0.0, None)  # no front trial got that far: no floor
    rule.check(2, 31.0, 60.0)
    with pytest.raises(EarlyStopped, match=r"front_fraction 0.5 x the front's lowest 60.0%"):
        rule.check(2, 29.0, 60.0)
    both = EarlyStop(at_epoch=2, min_accuracy=40.0, front_fraction=0.5)
    with pytest.raises(EarlyStopped, match="min_accuracy"):  # the higher floor wins
        both.check(2, 35.0, 60.0)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[early_stop]\nmin_accuracy = 30.0\n", r"at_epoch must be an integer >= 1, got None"),
        ("[early_stop]\nat_epoch = 2\n", r"needs min_accuracy .* and/or front_fraction"),
        ("[early_stop]\nat_epoch = 2\nmin_accuracy = 130\n", r"min_accuracy must be .* got 130"),
        ("[early_stop]\nat_epoch = 2\nfloor = 3\n", r"unknown key 'floor'; allowed: at_epoch"),
        ("[constraints]\nbase_acc = { min = 1 }\n", r"unknown metric 'base_acc'; metrics are"),
        (
            "[constraints]\nbase_accuracy = 20\n",
            r"must be a table with min, max and/or min_from_best",
        ),
    ],
)
def test_bad_sections_name_file_key_and_fix(tmp_path: Path, section: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(TINY_SPACE + "\n" + section)
    with pytest.raises(SpaceError, match=message) as info:
        load_space(path)
    assert str(path) in str(info.value)


def test_early_stopped_trials_are_pruned_counted_and_never_on_the_front(
    tiny_space: Path, workdir: Path
) -> None:
    tiny_space.write_text(TINY_SPACE + "\n[early_stop]\nat_epoch = 1\nmin_accuracy = 100.0\n")
    space = load_space(tiny_space)
    assert space.early_stop == EarlyStop(at_epoch=1, min_accuracy=100.0)
    outcome = run_study(space, StudyOptions(n_trials=2, show_progress=False))
    assert outcome.ran == 2 and outcome.pruned == 2 and outcome.front == []
    trials = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db").trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for t in trials:
        assert t.user_attrs["pruned_reason"].startswith("early-stopped: test accuracy")
        assert len(t.user_attrs["curve"]) == 1  # what it did before stopping is kept
        assert "lambda_max" not in t.user_attrs  # sharpness and compression were skipped
    assert not list((workdir / "runs" / "tiny" / "checkpoints").glob("*"))
