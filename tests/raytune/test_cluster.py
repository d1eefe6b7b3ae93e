"""A real 2-node Ray cluster (head + worker, 1 CPU each, loopback only) runs a study through
its address; the worker node is killed mid-trial. One cluster run serves both tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from snt_search.cli import main

from . import sandbox_study
from .conftest import Sandbox, _remove, finish

TRIALS = 4


@pytest.fixture(scope="module")
def cluster_run(
    tmp_path_factory: pytest.TempPathFactory, sandbox_ok: None
) -> tuple[Path, dict[str, Any], list[optuna.trial.FrozenTrial]]:
    import tempfile

    folder = tmp_path_factory.mktemp("cluster")
    ray_tmp = Path(tempfile.mkdtemp(prefix="snt-ray-"))
    try:
        proc = Sandbox(folder, ray_tmp).start("--trials", str(TRIALS), "--cluster", "--kill-worker")
        result = finish(proc, timeout=400)
    finally:
        _remove(ray_tmp)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'study.db'}")
    return folder, result, study.get_trials()


@pytest.mark.timing
def test_trials_run_on_both_nodes_and_land_in_the_optuna_storage(
    cluster_run: tuple[Path, dict[str, Any], list[optuna.trial.FrozenTrial]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, result, trials = cluster_run
    assert result["node_ips"] == ["127.0.0.1"]  # both nodes, and nothing but loopback
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == TRIALS == result["finished"]
    nodes = {a["node_id"] for t in complete for a in t.user_attrs["ray_attempts"]}
    assert nodes == {result["head"], result["worker"]}
    for t in complete:  # the local driver's attributes, plus where the trial ran
        attrs = t.user_attrs
        assert list(t.values) == [attrs["lambda_max"], attrs["accuracy_drop"]]
        assert attrs["config"]["plugins"]["backbone"] == "mixer_s"
        assert len(attrs["curve"]) == 12 and attrs["curve"][-1]["epoch"] == 12
        assert attrs["sharpness_report"]["method"] == "lanczos"
        assert attrs["compression_report"]["sparsity"] == pytest.approx(0.5, abs=0.02)
        assert attrs["ray_node_ip"] == "127.0.0.1" and attrs["ray_experiment"].startswith("tiny-")

    # `snt-search pareto` reads the Ray study exactly like a local one.
    storage = f"sqlite:///{folder / 'study.db'}"
    assert main(["pareto", "--study-name", "tiny", "--storage", storage, "--json"]) == 0
    shown = {row["trial"] for row in json.loads(capsys.readouterr().out)}
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert shown == {t.number for t in study.best_trials} != set()
    assert sorted(study.user_attrs["pareto_front"]) == sorted(shown)
    assert json.loads((folder / "runs/tiny/pareto.json").read_text())


@pytest.mark.timing
def test_a_worker_node_that_dies_mid_trial_loses_nothing(
    cluster_run: tuple[Path, dict[str, Any], list[optuna.trial.FrozenTrial]],
) -> None:
    _, result, trials = cluster_run
    killed = next(t for t in trials if t.number == result["killed_trial"])
    # Retried on the surviving node from the checkpoint of an epoch it finished on the dead one.
    first, *retries = killed.user_attrs["ray_attempts"]
    assert first["node_id"] == result["worker"]
    assert retries and retries[-1]["node_id"] == result["head"]
    assert retries[-1]["from_epoch"] >= 1
    assert killed.user_attrs["resumed_from_epoch"] == retries[-1]["from_epoch"]
    assert killed.state == optuna.trial.TrialState.COMPLETE
    # Every trial asked is accounted for: finished, or failed on Ray and queued again.
    for t in trials:
        if t.state != optuna.trial.TrialState.COMPLETE:
            assert t.state == optuna.trial.TrialState.FAIL and "ray_error" in t.user_attrs
            assert any(r.system_attrs.get("failed_trial") == t.number for r in trials)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == TRIALS


def test_the_cluster_is_started_with_this_environments_ray() -> None:
    """``ray start`` is this interpreter's, not the first ``ray`` on PATH (a pyenv shim or
    another virtualenv would start a cluster of another Ray version)."""
    ray = Path(sandbox_study.RAY)
    assert ray.parent == Path(sys.executable).parent
    assert ray.is_file() and os.access(ray, os.X_OK), f"no ray command beside {sys.executable}"
