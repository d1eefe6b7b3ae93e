"""The live display: the front over the whole study, a resumed study's line, the phase of the
running trial, and an ETA."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from snt_search.cli import main
from snt_search.pipeline import run_trial
from snt_search.progress import StudyProgress, front_summary

OBJECTIVES = {"lambda_max": "minimize", "accuracy_drop": "minimize"}


def _study() -> optuna.Study:
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_user_attr("objectives", list(OBJECTIVES))
    for lam, drop in ((5.0, 1.0), (2.0, 3.0), (6.0, 4.0)):  # the third is dominated
        study.add_trial(optuna.trial.create_trial(values=[lam, drop]))
    return study


def test_front_summary_names_the_best_of_each_objective_and_its_trial() -> None:
    assert front_summary(_study(), list(OBJECTIVES)) == (
        "front 2 · lambda_max 2 (#1) · accuracy_drop 1 (#0)"
    )
    empty = optuna.create_study(directions=["minimize", "minimize"])
    assert front_summary(empty, list(OBJECTIVES)) == ""


def _display(total: int) -> tuple[StudyProgress, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=False)
    return StudyProgress(total, OBJECTIVES, console=console), out


def test_a_resumed_study_says_how_far_it_is_and_shows_its_front() -> None:
    study = _study()
    progress, out = _display(2)
    with progress:
        progress.resuming(study, 3, 5)
    text = out.getvalue()
    assert "resuming: 3 of 5 trials finished; 2 to run" in text
    assert progress.front_info == "front 2 · lambda_max 2 (#1) · accuracy_drop 1 (#0)"
    done, out = _display(0)
    with done:
        done.resuming(study, 3, 3)
    assert "nothing to run (raise --trials for more)" in out.getvalue()
    fresh, out = _display(3)
    with fresh:
        fresh.resuming(study, 0, 3)
    assert "resuming" not in out.getvalue()


def test_the_running_trial_shows_its_phase() -> None:
    progress, _ = _display(1)
    with progress:
        progress.start_trial(0, "snt adam", 2)
        progress.phase("lambda_max")
        task = progress.progress.tasks[progress.epochs]
        assert task.fields["info"] == "lambda_max ..."


def test_a_study_reports_each_phase_of_a_trial(
    tiny_space: Path, workdir: Path, monkeypatch: Any
) -> None:
    seen: list[str] = []
    real_phase = StudyProgress.phase

    def spy(self: StudyProgress, name: str) -> None:
        seen.append(name)
        real_phase(self, name)

    monkeypatch.setattr(StudyProgress, "phase", spy)
    assert main(["study", "--space", str(tiny_space), "--trials", "1"]) == 0
    assert seen == ["lambda_max", "compress"]
    text = tiny_space.read_text() + "\n[sweep]\nsparsities = [0.0, 0.5]\n"
    tiny_space.write_text(text)
    seen.clear()
    assert main(["study", "--space", str(tiny_space), "--trials", "1", "--study-name", "s"]) == 0
    assert seen == ["lambda_max", "compress", "sweep"]


def test_a_runner_without_on_phase_still_runs(tiny_space: Path, workdir: Path) -> None:
    from snt_search.driver import StudyOptions, run_study
    from snt_search.space import load_space

    def plain(spec: Any, *, registry: Any, on_epoch: Any, checkpoint: Any) -> Any:
        return run_trial(spec, registry=registry, on_epoch=on_epoch, checkpoint=checkpoint)

    outcome = run_study(load_space(tiny_space), StudyOptions(n_trials=1), runner=plain)
    assert outcome.finished == 1


def test_worker_trials_show_their_phase_from_the_storage() -> None:
    study = _study()
    running = study.ask()
    running.set_user_attr("phase", "lambda_max")
    progress, _ = _display(4)
    with progress:
        progress.show_study(study, 0)
        assert progress.progress.tasks[progress.trials].fields["info"] == "#3 lambda_max"


def test_worker_processes_store_each_phase(tiny_space: Path, workdir: Path) -> None:
    import optuna

    code = main(["study", "--space", str(tiny_space), "--trials", "2", "--workers", "2"])
    assert code == 0
    study = optuna.load_study(study_name="tiny", storage="sqlite:///snt-search.db")
    assert [t.user_attrs.get("phase") for t in study.trials] == ["compress", "compress"]
