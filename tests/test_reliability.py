"""The reliability promises of docs/studies.md that tests/test_storages.py does not cover yet.

Several commands sharing one study finish exactly the trials asked, never more; a worker
killed with SIGKILL while it estimates lambda_max (after training) leaves no trial RUNNING once
its heartbeat is stale, and the same command then finishes the study, the killed trial's
retry resuming from its last epoch checkpoint; unexpected errors in a row stop the study with
a message, and the same command resumes it. The storage tests run on SQLite, PostgreSQL and a
journal file (the ``storage_url`` fixture of tests/test_storages.py).
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from optuna.trial import TrialState
from test_storages import _space, _trials, pg_url, quick_runner, storage_url

from snt_search import stages
from snt_search.checkpoint import read_metadata
from snt_search.driver import (
    MAX_UNEXPECTED_IN_A_ROW,
    StudyAborted,
    StudyOptions,
    StudyOutcome,
    run_study,
)
from snt_search.pipeline import TrialResult, run_trial
from snt_search.trial_spec import TrialSpec

__all__ = ["pg_url", "storage_url"]  # fixtures, imported so that pytest finds them here

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used"),
]

COMMANDS = 3  # commands (each one worker, in a thread) sharing one study
TARGET = 4  # finished trials they are asked for, together
OVERLAP_S = 0.5  # each trial's duration: long enough that the commands' last trials overlap
MARKER = "lambda_max.pid"  # written next to the checkpoints by the first worker in lambda_max
STALL_S = 120.0  # how long that worker stalls in lambda_max (it is killed long before)


def overlapping_runner(spec: TrialSpec, **_: Any) -> TrialResult:
    """``quick_runner`` taking ``OVERLAP_S``: every command asks while others still run."""
    time.sleep(OVERLAP_S)
    return quick_runner(spec)


@pytest.mark.timing
def test_commands_sharing_a_study_finish_exactly_the_target(
    tiny_space: Path, storage_url: str
) -> None:
    space = _space(tiny_space)
    options = StudyOptions(n_trials=TARGET, storage=storage_url, show_progress=False)
    outcomes: list[StudyOutcome] = []
    errors: list[BaseException] = []

    def command() -> None:
        try:
            outcomes.append(run_study(space, options, runner=overlapping_runner))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=command) for _ in range(COMMANDS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(outcomes) == COMMANDS and all(o.problems == [] for o in outcomes)

    trials = _trials(storage_url)
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] == TARGET, states  # 6 before: each command ran 2
    assert set(states) <= {TrialState.COMPLETE, TrialState.FAIL}, states  # none RUNNING/WAITING
    surplus = [t for t in trials if t.state == TrialState.FAIL]
    # Each command asked again while the others' trials ran: the commands really raced.
    assert surplus, "no trial was surplus: the commands did not race for the last trials"
    for t in surplus:  # failed without running, never counted
        assert "not run" in t.user_attrs["surplus"] and "fail_reason" not in t.user_attrs
        assert "config" not in t.user_attrs and t.params == {}
    # The trials that ran are the first TARGET ones.
    complete = [t.number for t in trials if t.state == TrialState.COMPLETE]
    assert max(complete) < min(t.number for t in surplus)
    # The study is done: the same command runs nothing more.
    again = run_study(space, options, runner=overlapping_runner)
    assert again.ran == 0 and len(_trials(storage_url)) == len(trials)


def stalling_runner(spec: TrialSpec, *, checkpoint: Path, **kwargs: Any) -> TrialResult:
    """``run_trial`` in which the first lambda_max estimate of the study stalls until killed.

    The first process to reach lambda_max (after its last epoch's checkpoint) leaves its pid in
    ``MARKER`` next to the checkpoints and sleeps; every later estimate, the retry's included,
    runs normally. Module level, so worker processes can unpickle it.
    """
    marker = checkpoint.parent / MARKER
    estimate = stages.estimate_lambda_max

    def announce_and_stall(*args: Any, **kw: Any) -> Any:
        mine = marker.with_name(f".{MARKER}.{os.getpid()}")
        mine.write_text(str(os.getpid()))
        try:
            os.link(mine, marker)  # atomic: only the first process gets the marker
        except FileExistsError:
            return estimate(*args, **kw)
        finally:
            mine.unlink()
        time.sleep(STALL_S)
        return estimate(*args, **kw)

    with mock.patch.object(stages, "estimate_lambda_max", announce_and_stall):
        return run_trial(spec, checkpoint=checkpoint, **kwargs)


@pytest.mark.slow
@pytest.mark.timing
def test_worker_killed_in_lambda_max_is_failed_by_heartbeat_and_resumed(
    tiny_space: Path, storage_url: str, workdir: Path
) -> None:
    epochs = 2
    space = _space(tiny_space, **{"train.epochs": epochs})
    # workers=2 with one trial: it runs in a worker process (workers=1 would run it in this one).
    options = StudyOptions(
        n_trials=1, storage=storage_url, workers=2, show_progress=False, heartbeat_s=1, grace_s=3
    )
    result: dict[str, StudyOutcome] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("first", run_study(space, options, runner=stalling_runner))
    )
    thread.start()
    checkpoints = workdir / "runs" / "tiny" / "checkpoints"
    deadline = time.monotonic() + 120
    while not (checkpoints / MARKER).is_file() and thread.is_alive():
        assert time.monotonic() < deadline, "no worker reached lambda_max"
        time.sleep(0.1)
    assert (checkpoints / MARKER).is_file(), "the study ended before a worker reached lambda_max"
    pid = int((checkpoints / MARKER).read_text())
    (victim,) = [t for t in _trials(storage_url) if t.state == TrialState.RUNNING]
    assert victim.user_attrs["worker"].endswith(f":{pid}")
    (saved,) = checkpoints.glob(f"tiny-trial{victim.number:05d}-*.safetensors")
    assert read_metadata(saved)["epoch"] == epochs  # training is over: the kill is in lambda_max
    os.kill(pid, signal.SIGKILL)
    thread.join(60)
    first = result["first"]
    assert any("killed by signal 9" in p for p in first.problems), first.problems
    assert first.finished == 0
    assert [t.state for t in _trials(storage_url)] == [TrialState.RUNNING]  # until it goes stale

    time.sleep(options.grace_s + 1)  # let the dead worker's heartbeat go stale
    second = run_study(space, options, runner=stalling_runner)  # the same command
    assert second.problems == [] and second.finished == 1
    trials = _trials(storage_url)
    states = Counter(t.state for t in trials)
    assert states == {TrialState.FAIL: 1, TrialState.COMPLETE: 1}, states  # none RUNNING/WAITING
    killed = next(t for t in trials if t.number == victim.number)
    assert killed.state == TrialState.FAIL and "fail_reason" not in killed.user_attrs
    (retry,) = [t for t in trials if t.state == TrialState.COMPLETE]
    assert retry.system_attrs["failed_trial"] == victim.number and retry.params == killed.params
    assert retry.user_attrs["resumed_from_epoch"] == epochs  # no epoch trained again
    assert len(retry.user_attrs["curve"]) == epochs and math.isfinite(
        retry.user_attrs["lambda_max"]
    )
    assert not list(checkpoints.glob("*.safetensors"))  # the finished trial cleaned up


def broken_runner(spec: TrialSpec, **_: Any) -> TrialResult:
    """Every trial hits the same bug (not a bad configuration)."""
    raise RuntimeError("broken environment")


def test_unexpected_errors_in_a_row_abort_and_the_same_command_resumes(
    tiny_space: Path, workdir: Path
) -> None:
    space = _space(tiny_space)
    url = f"sqlite:///{workdir / 'study.db'}"
    failing = MAX_UNEXPECTED_IN_A_ROW
    options = StudyOptions(n_trials=failing + 2, storage=url, show_progress=False)
    with pytest.raises(StudyAborted) as aborted:
        run_study(space, options, runner=broken_runner)
    message = str(aborted.value)
    assert f"{failing} trials in a row failed with unexpected errors" in message
    assert "(last: RuntimeError: broken environment)" in message
    assert message.endswith("run the same command again to resume.")
    trials = _trials(url)
    assert [t.state for t in trials] == [TrialState.FAIL] * failing
    assert all(t.user_attrs["fail_reason"] == "RuntimeError: broken environment" for t in trials)
    # Fixed, the same command finishes the study; the failures count as finished trials.
    outcome = run_study(space, options, runner=quick_runner)
    assert (outcome.finished, outcome.failed, outcome.problems) == (2, failing, [])
    assert not [t for t in _trials(url) if t.state == TrialState.RUNNING]


def test_every_test_the_guarantees_name_exists() -> None:
    root = Path(__file__).parents[1]
    docs = (root / "docs" / "studies.md").read_text()
    section = docs.split("## What is guaranteed, and how it is tested", 1)[1].split("\n## ")[0]
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", section)
    assert len(named) >= 10, named
    for path, name in named:
        assert f"def {name}(" in (root / path).read_text(), f"docs/studies.md names {path}::{name}"
