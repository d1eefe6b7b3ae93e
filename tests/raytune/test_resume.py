"""A driver killed mid-study (its whole machine: the sandbox goes) resumes with the same
command: finished trials are kept, the running one continues from its epoch checkpoint in the
restored Ray experiment, and nothing is asked twice."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest

from .conftest import Sandbox, finish, slow_space

TRIALS = 2


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="tiny", storage=storage).get_trials()
    except Exception:  # not created yet, or the database is busy: ask again
        return []


def _ray_files(sandbox: Sandbox, trial: optuna.trial.FrozenTrial | None = None) -> list[Path]:
    """The epoch checkpoints of ``trial`` on storage, or the experiment's state snapshots."""
    where = f"trial_{trial.number:05d}_*/checkpoint_*" if trial else "experiment_state-*.json"
    return list(sandbox.folder.glob(f"runs/tiny/ray/*/{where}"))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # replaced by a newer snapshot meanwhile
        return 0.0


@pytest.mark.timing
def test_a_killed_driver_resumes_with_the_same_command(sandbox: Sandbox) -> None:
    storage = f"sqlite:///{sandbox.folder / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # Trials long enough (8x the data of the other Ray tests) that the kill below lands while
    # one still runs: with the fused, bf16 training loop 512 images x 12 epochs took ~1 s.
    (sandbox.folder / "space.toml").write_text(slow_space(train_size=4096))
    proc = sandbox.start("--trials", str(TRIALS))
    deadline = time.monotonic() + 300
    seen = None  # when the running trial had two epoch checkpoints on storage
    while True:
        trials = _trials(storage)
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        if done and running and seen is None and len(_ray_files(sandbox, running[0])) >= 2:
            seen = time.time()
        # Kill once Ray has snapshotted the experiment since then: it knows a checkpoint.
        if seen is not None and any(_mtime(f) > seen for f in _ray_files(sandbox)):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no moment to kill the driver came:\n{proc.communicate()[0][-4000:]}")
        time.sleep(0.1)
    proc.kill()  # the sandbox's init dies, and with it the driver and every Ray process
    proc.wait()
    experiment = optuna.load_study(study_name="tiny", storage=storage).user_attrs[
        "ray_experiment_state"
    ]
    assert experiment["done"] is False

    result = finish(sandbox.start("--trials", str(TRIALS)), timeout=300)
    study = optuna.load_study(study_name="tiny", storage=storage)
    after = {t.number: t for t in study.get_trials()}
    assert result["finished"] == TRIALS and len(after) == TRIALS  # nothing asked twice
    for t in done:  # finished trials are untouched
        assert after[t.number].values == t.values
        assert after[t.number].datetime_complete == t.datetime_complete
    resumed = after[running[0].number]
    assert resumed.state == optuna.trial.TrialState.COMPLETE
    first, *again = resumed.user_attrs["ray_attempts"]
    assert again and again[-1]["from_epoch"] >= 1  # continued from its checkpoint
    assert len(resumed.user_attrs["curve"]) == 12
    # ... inside the restored experiment, which is now done.
    assert resumed.user_attrs["ray_experiment"] == experiment["name"]
    assert study.user_attrs["ray_experiment_state"] == {**experiment, "done": True}
