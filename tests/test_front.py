"""One Pareto front everywhere: ``snt-search pareto``, the stored ``pareto_front``, the
hypervolume and the report all use :func:`snt_search.pareto.front_trials` (COMPLETE, feasible,
finite, non-dominated); an empty front says why, and ``--csv`` still writes the header."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from snt_search import hypervolume
from snt_search.cli import main
from snt_search.pareto import empty_front_reason, front_rows, front_trials
from snt_search.recording import record_study
from snt_search.report.data import study_data
from snt_search.report.tables import build_tables

LIMIT = "base_accuracy>=50"  # the name ``Constraint("base_accuracy", low=50)`` stores


def _study(url: str = "sqlite:///front.db", name: str = "front") -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=url, directions=["minimize", "maximize"])
    study.set_user_attr("objectives", ["lambda_max", "compressed_accuracy"])
    return study


def _add(
    study: optuna.Study,
    values: list[float] | None,
    violation: float | None = None,
    state: TrialState = TrialState.COMPLETE,
    **user_attrs: Any,
) -> int:
    system = {} if violation is None else {f"constraints:{LIMIT}": violation}
    study.add_trial(
        create_trial(state=state, values=values, system_attrs=system, user_attrs=user_attrs)
    )
    return study.trials[-1].number


def test_all_four_agree_and_leave_out_infeasible_and_non_finite_dominators(
    workdir: Path,
) -> None:
    study = _study()
    infeasible = _add(study, [1.0, 95.0], violation=5.0)  # dominates every feasible trial
    b = _add(study, [2.0, 80.0], violation=-30.0)
    c = _add(study, [3.0, 90.0], violation=-40.0)
    _add(study, [4.0, 70.0], violation=-20.0)  # dominated by b and c
    _add(study, [-math.inf, 99.0])  # dominates everything, but infinite
    _add(study, None, state=TrialState.FAIL)
    expected = [b, c]

    assert [t.number for t in front_trials(study)] == expected
    assert [r["trial"] for r in front_rows(study)] == expected
    record_study(study)
    assert study.user_attrs["pareto_front"] == expected
    assert hypervolume.front_numbers(study.trials, study.directions) == expected
    assert {r.number for r in study_data(study).front} == set(expected)
    assert infeasible not in {n for n, _ in hypervolume.minimized(study.trials, study.directions)}

    # The stored hypervolume is that of the front b, c (maximized values negated).
    history, reference = hypervolume.history(study)
    assert reference is not None
    front = [np.array([2.0, -80.0]), np.array([3.0, -90.0])]
    assert history[-1]["hypervolume"] == pytest.approx(
        hypervolume.hypervolume(front, np.array(reference))
    )
    assert study.user_attrs["hypervolume_history"][-1][1] == history[-1]["hypervolume"]


def test_front_of_trials_needs_the_directions() -> None:
    with pytest.raises(TypeError, match="pass the study's directions"):
        front_trials([])


def test_empty_front_says_why(workdir: Path) -> None:
    study = _study()
    assert empty_front_reason(study) == "no finished trial yet"
    _add(study, [1.0, 40.0], violation=10.0)
    _add(study, [2.0, 30.0], violation=20.0)
    assert front_trials(study) == []
    assert empty_front_reason(study) == (
        f"no feasible trial: all 2 complete trials violate a constraint: {LIMIT} (2 of 2)"
    )
    _add(study, [math.inf, 60.0])
    assert empty_front_reason(study) == (
        "no feasible trial with finite objective values among 3 complete trials: 2 violate a "
        f"constraint ({LIMIT} (2 of 3)), 1 have NaN or infinite objective values"
    )
    nonfinite = _study(name="nonfinite")
    _add(nonfinite, [math.inf, 60.0])
    assert empty_front_reason(nonfinite) == (
        "no trial with finite objective values: all 1 complete trials have NaN or infinite ones"
    )


def test_pareto_command_on_an_all_infeasible_study_says_so_and_writes_the_csv_header(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _study()
    for i in range(3):
        _add(study, [1.0 + i, 40.0], violation=10.0)
    _add(study, None, state=TrialState.FAIL)
    args = ["pareto", "--study-name", "front", "--storage", "sqlite:///front.db"]
    assert main([*args, "--csv", "f.csv", "--out", "out"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert (
        f"no feasible trial: all 3 complete trials violate a constraint: {LIMIT} (3 of 3)" in said
    )
    assert "no finished trial yet" not in said
    header = ["trial", "lambda_max", "compressed_accuracy"]
    for path in (workdir / "f.csv", workdir / "out" / "pareto.csv"):
        with path.open(newline="") as fh:
            assert list(csv.reader(fh)) == [header]

    _study(name="empty")
    assert main(["pareto", "--study-name", "empty", "--storage", "sqlite:///front.db"]) == 0
    assert "no finished trial yet" in capsys.readouterr().out


def test_surplus_trials_are_not_failures_in_the_report(workdir: Path) -> None:
    study = _study()
    _add(study, [1.0, 90.0])
    _add(study, None, state=TrialState.FAIL, fail_reason="TrialFailed: diverged")
    surplus = _add(study, None, state=TrialState.FAIL, surplus="not run: the study had them")
    killed = _add(study, None, state=TrialState.FAIL)
    data = study_data(study)
    assert [r.number for r in data.surplus] == [surplus]
    assert surplus not in [r.number for r in data.failed] and killed in [
        r.number for r in data.failed
    ]
    tables = build_tables(data, "fisher", 0.95)
    failures = tables["failures"]
    assert [row[0] for row in failures.rows] == ["1", str(killed)]
    assert f"1 surplus trial(s) ({surplus})" in failures.note
    states = {row[0]: row[1] for row in tables["trials"].rows}
    assert states[str(surplus)] == "surplus" and states[str(killed)] == "fail"
