"""What a trial leaves in the storage: results, reasons, and re-queued repeats."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from snt_search.constraints import Constraint
from snt_search.recording import record_end, record_result, requeue


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["minimize", "minimize"])


def test_a_result_stores_metrics_curve_reports_and_constraints() -> None:
    study = _study()
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)})
    limit = Constraint(metric="params", high=100.0)
    curve = [{"epoch": 1, "loss": 0.5}]
    record_result(
        trial, {"lambda_max": 3.0, "params": 120.0}, curve, {"prune": {"s": 0.5}}, [limit]
    )
    study.tell(trial, [3.0, 1.0])
    (done,) = study.get_trials()
    assert done.user_attrs == {
        "lambda_max": 3.0,
        "params": 120.0,
        "curve": curve,
        "prune_report": {"s": 0.5},
    }
    assert done.constraints == {"params<=100": 20.0}  # violated by 20


def test_an_end_stores_the_reason_and_the_curve_so_far() -> None:
    study = _study()
    trial = study.ask()
    record_end(trial, "fail_reason", "Diverged: loss nan", [{"epoch": 1}])
    study.tell(trial, state=TrialState.FAIL)
    assert study.get_trials()[0].user_attrs == {
        "fail_reason": "Diverged: loss nan",
        "curve": [{"epoch": 1}],
    }


def test_requeue_repeats_the_original_and_counts_only_retries() -> None:
    study = _study()
    dist = {"lr": optuna.distributions.FloatDistribution(1e-3, 1.0)}
    first = study.ask(dist)
    study.tell(first, state=TrialState.FAIL)
    frozen = study.get_trials()[0]
    assert requeue(study, frozen, as_retry=False)  # an interruption: not a retry
    waiting = study.get_trials(states=(TrialState.WAITING,))[-1]
    assert waiting.params == frozen.params
    assert waiting.system_attrs == {"failed_trial": 0, "retry_history": []}
    assert requeue(study, frozen, max_retries=1)  # the first retry of trial 0
    assert study.get_trials()[-1].system_attrs == {"failed_trial": 0, "retry_history": [0]}
    study.tell(study.ask(), state=TrialState.FAIL)  # the interrupted repeat runs and fails
    retry = study.ask()  # the retry (history [0]) runs and fails too
    study.tell(retry, state=TrialState.FAIL)
    frozen_retry = study.get_trials()[retry.number]
    assert frozen_retry.system_attrs["retry_history"] == [0]
    assert not requeue(study, frozen_retry, max_retries=1)  # trial 0 had its one retry
    assert requeue(study, frozen_retry, max_retries=2)
    last = study.get_trials()[-1]
    assert last.state == TrialState.WAITING
    assert last.system_attrs == {"failed_trial": 0, "retry_history": [0, retry.number]}
