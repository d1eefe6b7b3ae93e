"""Worker processes and interruption: shares, threads, exit reports, Ctrl-C then resume."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from snt_search import training
from snt_search.checkpoint import save_checkpoint
from snt_search.cli import main
from snt_search.workers import WorkerExit, split, threads_per_worker


def test_split_shares_evenly_and_never_empty() -> None:
    assert split(6, 2) == [3, 3]
    assert split(7, 3) == [3, 2, 2]
    assert split(1, 4) == [1]
    assert sum(split(101, 8)) == 101


def test_threads_per_worker_do_not_oversubscribe() -> None:
    assert threads_per_worker(1, cores=2) == 2
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(3, cores=2) == 1  # never 0
    assert threads_per_worker(4, cores=16) == 4


def test_worker_exit_says_what_happened() -> None:
    assert WorkerExit(0, 12, 0).ok
    assert "killed by signal 9 (SIGKILL)" in WorkerExit(1, 34, -9).describe()
    assert "was interrupted" in WorkerExit(2, 56, 130).describe()
    assert "exited with code 1" in WorkerExit(3, 78, 1).describe()


@pytest.mark.timing
def test_ctrl_c_stops_cleanly_and_the_same_command_resumes_the_trial(
    tiny_space: Path,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiny_space.write_text(tiny_space.read_text().replace("epochs = 1", "epochs = 4"))
    command = ["study", "--space", str(tiny_space), "--trials", "2", "--json"]
    checkpoints = workdir / "runs" / "tiny" / "checkpoints"

    def lingering_save(*args: Any, **kwargs: Any) -> None:
        """Each epoch's checkpoint stays the newest for a while (these epochs take ms)."""
        save_checkpoint(*args, **kwargs)
        time.sleep(0.5)

    monkeypatch.setattr(training, "save_checkpoint", lingering_save)
    fired: list[float] = []

    done = threading.Event()

    def interrupt_after_first_checkpoint() -> None:
        while not list(checkpoints.glob("*.safetensors")):
            if done.wait(0.02):
                return  # the study ended first: never signal a later test
        fired.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in the terminal does

    # Python's own Ctrl-C handler, whatever earlier code in this process left installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt_after_first_checkpoint, daemon=True).start()
    try:
        code = main(command)
    finally:
        done.set()
        signal.signal(signal.SIGINT, previous)
    assert code == 130, f"exit {code}; the Ctrl-C watcher {'fired' if fired else 'never fired'}"
    err = capsys.readouterr().err
    assert f"Resume: snt-search {' '.join(command)}" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    first, queued = study.trials
    assert first.state == TrialState.FAIL and first.user_attrs["interrupted"] is True
    assert "fail_reason" not in first.user_attrs  # not finished: it does not count
    assert queued.state == TrialState.WAITING and queued.system_attrs["failed_trial"] == 0
    assert list(checkpoints.glob("*.safetensors"))  # kept for the resume

    assert main(command) == 0
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2
    resumed = next(t for t in complete if t.number == queued.number)
    assert resumed.params == first.params
    assert resumed.user_attrs["resumed_from_epoch"] >= 1  # continued, not restarted
    assert [p["epoch"] for p in resumed.user_attrs["curve"]] == [1, 2, 3, 4]
    assert not list(checkpoints.glob("*.safetensors"))
