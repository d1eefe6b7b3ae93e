"""Every built-in space (``studies/*.toml``), by name, end to end on the local driver.

Each space runs as shipped (its sampler, objectives, plugins and their parameter ranges,
sharpness method, sweep, constraints), with two things made tiny so the test takes seconds:
the data (``--dataset synthetic``) and the ``smoke`` budget. A plugin, sampler or library
release that breaks one space fails here by the space's name. The Ray driver's own part (its
searcher saving and rebuilding the space's sampler) is tested per space in
``tests/raytune/test_builtin_spaces_on_ray.py``; its trials run the same ``run_trial``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from snt_search.config import Budget
from snt_search.driver import StudyOptions, run_study
from snt_search.space import load_space

STUDIES = sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.toml"))
TINY = Budget(
    name="smoke",
    epochs=1,
    batch_size=32,
    train_subset=64,
    test_subset=64,
    sharpness_samples=16,
    sharpness_max_iter=30,  # as shipped: an unconverged lambda_max is off the front
)


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_a_builtin_space_runs_end_to_end(path: Path, workdir: Path) -> None:
    shipped = load_space(path)
    space = shipped.with_overrides({"dataset": "synthetic"}, {})
    space = replace(space, budgets={**space.budgets, "smoke": TINY})
    # Trials enough to draw every candidate of the most varied plugin kind at least once
    # is left to the sampler; two trials exercise the sampler past its first draw.
    outcome = run_study(space, StudyOptions(n_trials=2, show_progress=False))
    trials = optuna.load_study(study_name=space.name, storage="sqlite:///snt-search.db").trials
    reasons = [t.user_attrs.get("fail_reason") for t in trials]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, reasons
    for t in trials:
        assert t.values is not None and all(math.isfinite(v) for v in t.values)
        assert set(space.objectives) <= set(t.user_attrs)
    assert outcome.front and (workdir / "runs" / space.name / "pareto.json").is_file()
