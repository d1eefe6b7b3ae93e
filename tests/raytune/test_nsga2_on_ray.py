"""A Ray study on an ``nsga2`` space (the sampler 7 of the 9 built-in spaces use) runs to the
end through Ray's experiment snapshots, which save the searcher's state: optuna 5.1's
NSGA-II sampler holds a lock, so a searcher that pickled its sampler failed there."""

from __future__ import annotations

import io
import pickle
from typing import Any

import optuna
import pytest
from conftest import TINY_SPACE

from .conftest import Sandbox, finish

TRIALS = 2


class _DataOnly(pickle.Unpickler):
    """Unpickles dicts, lists, strs and numbers; refuses every class or function."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the searcher state holds an object: {module}.{name}")


@pytest.mark.timing
def test_an_nsga2_study_on_ray_saves_its_searcher_and_finishes(sandbox: Sandbox) -> None:
    space = TINY_SPACE.replace('sampler = "random"', 'sampler = "nsga2"')
    assert 'sampler = "nsga2"' in space
    (sandbox.folder / "space.toml").write_text(space)

    result = finish(sandbox.start("--trials", str(TRIALS)), timeout=300)

    assert result["finished"] == TRIALS and result["failed"] == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{sandbox.folder / 'study.db'}")
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.COMPLETE] * TRIALS
    saved = list(sandbox.folder.glob("runs/tiny/ray/*/searcher-state-*.pkl"))
    if not saved:
        pytest.fail("Ray saved no searcher state: the experiment snapshot was not exercised")
    state = _DataOnly(io.BytesIO(saved[0].read_bytes())).load()
    assert state["sampler"]["name"] == "nsga2" and state["sampler"]["study"] == "tiny"
