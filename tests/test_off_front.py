"""A negative or unconverged lambda_max is a result kept off every front, with its reason.

The trial stays COMPLETE with its values (so they can be seen), carries ``off_front_reason``
and the violated constraint ``off_front:sharpness``; ``study.best_trials``, ``front_rows``,
``front_numbers`` and the stored ``pareto_front`` leave it out, even where it dominates.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from snt_search import stages
from snt_search.config import SharpnessConfig
from snt_search.driver import StudyOptions, run_study
from snt_search.hypervolume import front_numbers
from snt_search.pareto import front_rows
from snt_search.recording import record_result, record_study
from snt_search.sharpness import SharpnessResult, off_front_reason
from snt_search.space import load_space


def result(lam: float, *, converged: bool = True, method: str = "power") -> SharpnessResult:
    return SharpnessResult(
        lambda_max=lam,
        eigenvalues=(lam,),
        method=method,
        backend="double_backward",
        iterations=20 if not converged else 7,
        hvp_count=20,
        relative_residual=0.3 if not converged else 1e-4,
        error_estimate=0.3 if not converged else 1e-4,
        converged=converged,
        samples=32,
        seed=0,
        wall_time_s=0.1,
    )


def test_the_rule_negative_never_counts_unconverged_only_when_required() -> None:
    strict, lenient = SharpnessConfig(max_iter=20), SharpnessConfig(require_converged=False)
    assert off_front_reason(result(2.5), strict) is None
    negative = off_front_reason(result(-0.7), strict) or ""
    assert "-0.7 is negative" in negative and "method 'power'" in negative
    assert 'method = "lanczos"' in negative  # the fix
    assert off_front_reason(result(-0.7), lenient) == negative  # a setting cannot make it count
    unconverged = off_front_reason(result(3.0, converged=False), strict) or ""
    assert "did not converge" in unconverged and "20 iterations (max_iter = 20)" in unconverged
    assert "sharpness_max_iter" in unconverged and "require_converged = false" in unconverged
    assert off_front_reason(result(3.0, converged=False), lenient) is None
    assert SharpnessConfig().require_converged  # the safe default


def _tell(study: optuna.Study, values: list[float], reason: str | None) -> None:
    trial = study.ask()
    metrics = {"lambda_max": values[0], "accuracy_drop": values[1], "base_accuracy": 50.0}
    reports: dict[str, Any] = {
        "sharpness": {**result(values[0]).as_dict(), "off_front_reason": reason},
        "compression": {"sparsity": 0.5},
    }
    record_result(trial, metrics, [], reports)
    study.tell(trial, values)


def test_an_off_front_trial_is_complete_with_its_reason_and_on_no_front() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_user_attr("objectives", ["lambda_max", "accuracy_drop"])
    _tell(study, [2.0, 5.0], None)
    _tell(study, [-0.7, 0.0], "lambda_max estimate -0.7 is negative")  # dominates the others
    _tell(study, [3.0, 1.0], None)
    good, bad, other = study.get_trials()
    assert bad.state == TrialState.COMPLETE and bad.values == [-0.7, 0.0]
    assert bad.user_attrs["off_front_reason"] == "lambda_max estimate -0.7 is negative"
    assert bad.constraints == {"off_front:sharpness": 1.0}
    assert good.constraints == {"off_front:sharpness": 0.0}  # same names on every trial
    assert "off_front_reason" not in good.user_attrs
    assert [t.number for t in study.best_trials] == [0, 2]
    assert [r["trial"] for r in front_rows(study)] == [0, 2]
    assert front_numbers(study.get_trials(), study.directions) == [0, 2]
    record_study(study)
    assert study.user_attrs["pareto_front"] == [0, 2]


def test_space_constraints_and_the_off_front_constraint_combine() -> None:
    from snt_search.constraints import Constraint

    study = optuna.create_study(directions=["minimize", "minimize"])
    trial = study.ask()
    reports = {"sharpness": {"off_front_reason": None}}
    record_result(trial, {"base_accuracy": 10.0}, [], reports, [Constraint("base_accuracy", 12.0)])
    study.tell(trial, [1.0, 1.0])
    assert study.trials[0].constraints == {"base_accuracy>=12": 2.0, "off_front:sharpness": 0.0}


def test_a_study_keeps_a_negative_power_estimate_off_the_front(
    tiny_space: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the estimator returns a negative, converged value (as power iteration does
    on a concave dominant direction); the trial is COMPLETE, recorded with the reason, and
    neither ``study.best_trials`` nor the command's front holds it."""
    calls: list[dict[str, Any]] = []

    def negative(model: Any, batches: Any, **kwargs: Any) -> SharpnessResult:
        calls.append(kwargs)
        return result(-0.5, method=kwargs["method"])

    monkeypatch.setattr(stages, "estimate_lambda_max", negative)
    space = load_space(tiny_space)
    space = replace(space, sharpness=replace(space.sharpness, method="power"))
    outcome = run_study(space, StudyOptions(n_trials=1, show_progress=False))
    assert calls and calls[0]["method"] == "power"
    study = optuna.load_study(study_name=space.name, storage="sqlite:///snt-search.db")
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE and trial.values is not None
    assert trial.values[0] == -0.5 and all(math.isfinite(v) for v in trial.values)
    assert "is negative" in trial.user_attrs["off_front_reason"]
    assert trial.user_attrs["sharpness_report"]["off_front_reason"].startswith("lambda_max")
    assert study.best_trials == [] and outcome.front == [] and front_rows(study) == []
