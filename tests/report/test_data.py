"""The tidy table of a stored study: states, groups, front, non-finite values, sweeps, figures."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from snt_search.report.data import StudyNotFound, load_study_data, study_data
from snt_search.report.figures import compression_figure, cost_figure, front_figure

from .conftest import STUDY, MakeStudy, add, finished_attrs, new_study


def test_rows_states_and_groups(storage: str) -> None:
    data = load_study_data(storage, STUDY)
    assert data.objectives == ["lambda_max", "accuracy_drop"]
    assert data.directions == ["minimize", "minimize"]
    assert (len(data.trials), len(data.finished), len(data.failed)) == (17, 14, 2)
    assert list(data.groups()) == [
        "none + adam (ADAM)",
        "none + sam (SAM)",
        "snt + adam (ARCH)",
        "snt + sam",
    ]
    reasons = {r.number: r.fail_reason for r in data.failed}
    assert "diverged" in (reasons[12] or "") and reasons[13] is None
    assert data.trials[0].compression_point() == ("sparsity", pytest.approx(0.301))


def test_front_is_optunas_without_non_finite(storage: str) -> None:
    data = load_study_data(storage, STUDY)
    study = optuna.load_study(study_name=STUDY, storage=storage)
    expected = {
        t.number
        for t in study.best_trials
        if t.values is not None and all(math.isfinite(v) for v in t.values)
    }
    assert {r.number for r in data.front} == expected and expected
    inf_row = data.trials[14]
    assert inf_row.metric("lambda_max") == math.inf and not inf_row.on_front
    assert math.isnan(data.trials[15].metric("accuracy_drop") or 0.0)


def test_unknown_study_lists_the_stored_ones(storage: str) -> None:
    with pytest.raises(StudyNotFound, match=r"'nope'.*studies there: mixer_prune"):
        load_study_data(storage, "nope")


def test_group_names_the_backbone_when_the_study_varies_it(tmp_path: Path) -> None:
    study = new_study(f"sqlite:///{tmp_path / 's.db'}")
    for backbone in ("mixer_s", "resnet20"):
        attrs = finished_attrs("snt", "adam", 0, 0.5)
        attrs["config"]["plugins"]["backbone"] = backbone
        add(study, TrialState.COMPLETE, attrs, [attrs["lambda_max"], attrs["accuracy_drop"]])
    groups = list(study_data(study).groups())
    assert groups == ["mixer_s / snt + adam (ARCH)", "resnet20 / snt + adam (ARCH)"]


def test_sweeps_become_curves_and_constant_levels_a_box_plot(tmp_path: Path) -> None:
    study = new_study(f"sqlite:///{tmp_path / 's.db'}")
    for transform in ("none", "snt"):
        attrs = finished_attrs(transform, "adam", 0, 0.5)
        attrs["sweep"] = {"sparsities": [0.0, 0.5, 0.9], "accuracies": [90.0, 85.0, 40.0]}
        add(study, TrialState.COMPLETE, attrs, [attrs["lambda_max"], attrs["accuracy_drop"]])
    data = study_data(study)
    assert data.trials[0].sweep is not None and data.trials[0].sweep.xs == (0.0, 0.5, 0.9)
    fig = compression_figure(data)
    assert fig is not None and [t.type for t in fig.data] == ["scatter", "scatter"]
    assert "sparsity" in fig.layout.title.text

    flat = new_study(f"sqlite:///{tmp_path / 'flat.db'}")
    for transform in ("none", "snt"):
        attrs = finished_attrs(transform, "adam", 0, 0.5)
        add(flat, TrialState.COMPLETE, attrs, [attrs["lambda_max"], attrs["accuracy_drop"]])
    box = compression_figure(study_data(flat))
    assert box is not None and {t.type for t in box.data} == {"box"}


def test_figures_of_an_empty_study_are_none(make_study: MakeStudy) -> None:
    data = load_study_data(make_study(filled=False), STUDY)
    assert data.trials == [] and data.front == []
    assert front_figure(data) is None and cost_figure(data) is None
    assert compression_figure(data) is None
