"""The searcher that asks/tells the study, exercised without a Ray cluster (Ray only imported)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import TINY_SPACE
from optuna.trial import TrialState

from snt_search.driver import MAX_UNEXPECTED_IN_A_ROW, StudyOptions
from snt_search.ray.experiments import requeue_orphans
from snt_search.ray.searcher import StudySearcher
from snt_search.ray.trainable import RESULT_KEY
from snt_search.samplers import FACTORIES
from snt_search.space import Space, load_space
from snt_search.trial_spec import TrialSpec

RUNNING = TrialState.RUNNING
STORAGE = "sqlite:///s.db"
UNIT = optuna.distributions.FloatDistribution(0.0, 1.0)
METRICS = {"lambda_max": 2.5, "accuracy_drop": 1.5, "base_accuracy": 80.0}


def _searcher(space: Space, target: int = 3) -> StudySearcher:
    options = StudyOptions(n_trials=target, storage=STORAGE, show_progress=False)
    return StudySearcher(space, options, experiment="exp-1", target=target, max_failures=2)


def _report(config: dict[str, Any], attempt: str = "a1", **extra: Any) -> dict[str, Any]:
    return {
        "trial": config["trial"],
        "attempt": attempt,
        "ray_node_id": "node-1",
        "ray_node_ip": "127.0.0.1",
        "from_epoch": 0,
        "hostname": "host",
        "pid": 42,
        **extra,
    }


def _done(config: dict[str, Any], outcome: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return _report(config, **{RESULT_KEY: json.dumps(outcome)}, **extra)


def _trials() -> dict[int, optuna.trial.FrozenTrial]:
    return {t.number: t for t in optuna.load_study(study_name="tiny", storage=STORAGE).trials}


@pytest.fixture
def space(tiny_space: Path) -> Space:
    return load_space(tiny_space)


def test_a_finished_trial_is_stored_like_the_local_driver_stores_it(space: Space) -> None:
    searcher = _searcher(space)
    config = searcher.suggest("r1")
    assert config is not None and config["trial"] == 0
    assert isinstance(config["spec"], TrialSpec) and config["objectives"] == list(space.objectives)
    assert config["label"].startswith("transform=")
    searcher.on_trial_result("r1", _report(config, epoch=1))
    curve = [{"epoch": 1, "loss": 1.0, "train_accuracy": 50.0, "test_accuracy": 40.0}]
    outcome = {"metrics": METRICS, "curve": curve, "reports": {"sharpness": {"method": "lanczos"}}}
    searcher.on_trial_complete("r1", _done(config, outcome))

    trial = _trials()[0]
    assert trial.state == TrialState.COMPLETE and trial.values == [2.5, 1.5]
    attrs = trial.user_attrs
    assert attrs["config"] == config["spec"].as_dict()
    assert attrs["base_accuracy"] == 80.0 and attrs["curve"] == curve
    assert attrs["sharpness_report"] == {"method": "lanczos"}
    assert attrs["worker"] == "host:42" and attrs["ray_node_id"] == "node-1"
    assert attrs["ray_attempts"] == [{"node_id": "node-1", "node_ip": "127.0.0.1", "from_epoch": 0}]
    assert attrs["ray_experiment"] == "exp-1" and attrs["ray_trial_id"] == "r1"
    study = optuna.load_study(study_name="tiny", storage=STORAGE)
    assert study.user_attrs["pareto_front"] == [0]


def test_failed_and_early_stopped_trials_keep_their_reason_and_count(space: Space) -> None:
    searcher = _searcher(space, target=2)
    first, second = searcher.suggest("r1"), searcher.suggest("r2")
    assert first is not None and second is not None
    assert searcher.suggest("r3") is None  # two in flight already make the target: wait
    searcher.on_trial_complete("r1", _done(first, {"fail_reason": "TrialFailed: diverged"}))
    searcher.on_trial_complete("r2", _done(second, {"pruned_reason": "early-stopped: 9%"}))
    trials = _trials()
    assert trials[0].state == TrialState.FAIL
    assert trials[0].user_attrs["fail_reason"] == "TrialFailed: diverged"
    assert trials[1].state == TrialState.PRUNED
    assert trials[1].user_attrs["pruned_reason"] == "early-stopped: 9%"
    assert searcher.suggest("r4") == "FINISHED"  # both count towards the target


def test_a_trial_ray_gave_up_on_is_failed_and_queued_again_with_its_parameters(
    space: Space,
) -> None:
    searcher = _searcher(space)
    config = searcher.suggest("r1")
    assert config is not None
    searcher.on_trial_complete("r1", None, error=True)
    lost = _trials()[0]
    assert lost.state == TrialState.FAIL and "fail_reason" not in lost.user_attrs
    assert "errored after 2 retries" in lost.user_attrs["ray_error"]
    retry = searcher.suggest("r2")  # the queued copy comes first
    assert retry is not None and retry["trial"] == 1
    again = _trials()[1]
    assert again.params == lost.params and again.system_attrs["failed_trial"] == 0


def test_restored_searcher_finishes_live_trials_and_draws_on_a_new_stream(
    space: Space, tmp_path: Path
) -> None:
    searcher = _searcher(space, target=5)
    config = searcher.suggest("r1")
    assert config is not None
    saved = tmp_path / "searcher.pkl"
    searcher.save(str(saved))
    lost_draw = searcher.suggest("r2")  # asked after the save: queued again after a restore
    assert lost_draw is not None

    restored = pickle.loads(pickle.dumps(_searcher(space, target=5)))  # as from tuner.pkl
    restored.restore(str(saved))
    restored.on_trial_complete("r1", _done(config, {"metrics": METRICS}))
    assert _trials()[0].state == TrialState.COMPLETE  # the right Optuna trial got the result
    redraw = restored.suggest("r3")
    assert redraw is not None and redraw["trial"] == 2
    assert _trials()[2].params != _trials()[1].params  # not the first run's draw again


def test_a_restored_sampler_is_reproducible_until_the_study_grows(space: Space) -> None:
    """Restores of one state draw the same while the study holds the same trials; once it
    holds more (a restored run asked some, then died), a restore draws afresh."""
    searcher = _searcher(space, target=5)
    assert searcher.suggest("r1") is not None
    state = searcher.get_state()

    def draw_after_restore() -> float:
        restored = _searcher(space, target=5)
        restored.set_state(state)
        study = restored.study  # the sampler is rebuilt here
        return float(study.sampler.sample_independent(study, _trials()[0], "x", UNIT))

    first = draw_after_restore()
    assert draw_after_restore() == first
    assert searcher.suggest("r2") is not None
    assert draw_after_restore() != first


def _plain(value: object) -> bool:
    """Whether ``value`` is built of dicts, lists, strs, numbers, bools and None only."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


@pytest.mark.parametrize("sampler", FACTORIES)
def test_the_saved_state_is_plain_data_with_every_sampler(
    sampler: str, tiny_space: Path, tmp_path: Path
) -> None:
    tiny_space.write_text(TINY_SPACE.replace('sampler = "random"', f'sampler = "{sampler}"'))
    space = load_space(tiny_space)
    searcher = _searcher(space, target=5)
    first, second = searcher.suggest("r1"), searcher.suggest("r2")
    assert first is not None and second is not None
    searcher.on_trial_complete("r1", _done(first, {"metrics": METRICS}))
    searcher.on_trial_result("r2", _report(second))

    state = searcher.get_state()
    data = pickle.dumps(state)  # optuna 5.1's NSGAIISampler holds a lock: never pickled
    assert _plain(state) and b"optuna" not in data
    assert state["live"] == {"r2": {"trial_id": 2, "number": 1, "attempt": "a1"}}
    assert state["sampler"] == {"name": sampler, "seed": 0, "stream": 0, "study": "tiny"}
    searcher.save(str(tmp_path / "searcher.pkl"))
    copy = pickle.loads(pickle.dumps(searcher))  # tuner.pkl, with the study open
    assert copy.get_state() == state

    restored = _searcher(space, target=5)
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.on_trial_complete("r2", _done(second, {"metrics": METRICS}))
    third = restored.suggest("r3")
    assert third is not None and third["trial"] == 2
    assert isinstance(restored.study.sampler, type(searcher.study.sampler))
    assert [t.state for t in _trials().values()] == [TrialState.COMPLETE] * 2 + [RUNNING]


def test_a_state_saved_for_another_study_or_sampler_is_refused(space: Space) -> None:
    state = _searcher(space).get_state()
    other = {**state, "sampler": {**state["sampler"], "name": "nsga2"}}
    with pytest.raises(ValueError, match="saved for sampler 'nsga2', but this searcher runs "):
        _searcher(space).set_state(other)


def test_after_a_restore_trials_the_study_already_finished_are_ignored(space: Space) -> None:
    searcher = _searcher(space)
    config = searcher.suggest("r1")
    assert config is not None
    state = searcher.get_state()
    searcher.on_trial_complete("r1", _done(config, {"metrics": METRICS}))

    restored = _searcher(space)
    restored.set_state(state)  # saved while r1 was running; Ray runs r1 again
    restored.on_trial_result("r1", _report(config, attempt="a2"))
    restored.on_trial_complete("r1", _done(config, {"metrics": {**METRICS, "lambda_max": 9.0}}))
    trial = _trials()[0]
    assert trial.values == [2.5, 1.5] and len(trial.user_attrs["ray_attempts"]) == 1


def test_unexpected_errors_in_a_row_stop_the_experiment(space: Space) -> None:
    searcher = _searcher(space, target=10)
    for i in range(MAX_UNEXPECTED_IN_A_ROW):
        config = searcher.suggest(f"r{i}")
        assert config is not None
        outcome = {"fail_reason": "RuntimeError: boom", "unexpected": True}
        searcher.on_trial_complete(f"r{i}", _done(config, outcome))
    assert searcher.suggest("next") == "FINISHED"
    study = optuna.load_study(study_name="tiny", storage=STORAGE)
    assert (
        "in a row failed with unexpected errors"
        in study.user_attrs["ray_experiment_state"]["aborted"]
    )


def test_trials_a_stopped_driver_left_running_are_requeued(space: Space) -> None:
    searcher = _searcher(space)
    config = searcher.suggest("r1")
    assert config is not None
    study = optuna.load_study(study_name="tiny", storage=STORAGE)
    requeue_orphans(study, {"another-experiment"})
    assert _trials()[0].state == TrialState.RUNNING  # not ours to sweep
    requeue_orphans(study, {"exp-1"})
    trials = _trials()
    assert trials[0].state == TrialState.FAIL and "lost" in trials[0].user_attrs["ray_error"]
    assert trials[1].state == TrialState.WAITING and trials[1].params == trials[0].params


def test_a_rerun_after_an_abort_starts_afresh(space: Space) -> None:
    from snt_search.ray.experiments import aborted, run_experiments
    from snt_search.ray.options import RayOptions

    searcher = _searcher(space, target=1)
    config = searcher.suggest("r1")
    assert config is not None
    searcher.on_trial_complete("r1", _done(config, {"metrics": METRICS}))
    study = optuna.load_study(study_name="tiny", storage=STORAGE)
    study.set_user_attr("ray_experiment_state", {"name": "e", "done": True, "aborted": "bug"})
    options = StudyOptions(n_trials=1, storage=STORAGE, show_progress=False)
    assert run_experiments(study, space, options, RayOptions(), "/tmp/unused") == []
    assert aborted(study) is None  # the user fixed the cause; the next experiment may run
