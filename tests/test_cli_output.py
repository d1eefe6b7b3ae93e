"""What the commands print: tables that read at 80 columns in a pipe (no cell cut to ``…``),
one line per finished trial (a failure without Optuna's traceback), the --trials rule in the
summary, ``spaces --check``/``study --dry-run``, and start-up without torch, Ray or plotly."""

from __future__ import annotations

import functools
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from rich.console import Console

from snt_search import driver
from snt_search.cli import _common, main
from snt_search.cli._front import front_table
from snt_search.pipeline import TrialFailed, TrialResult
from snt_search.progress import StudyProgress, trial_line
from snt_search.registry import AUTOLOAD_ENV
from snt_search.space import load_space
from snt_search.specs import KINDS
from snt_search.trial_spec import TrialSpec

WIDTH = 80


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The commands' console is 80 columns wide and no terminal (as in ``| cat``)."""
    monkeypatch.setattr(_common.console, "width", WIDTH)
    assert not _common.console.is_terminal
    yield


def _render(renderable: Any, width: int = WIDTH) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=False)
    console.print(renderable)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line) for line in text.splitlines()) <= width
    return str(text)


def _flat(text: str) -> str:
    return " ".join(text.split())


FRONT = [
    {
        "trial": trial,
        "lambda_max": 1234.56789,
        "accuracy_drop": -21.875,
        "base_accuracy": 91.40625,
        "compressed_accuracy": 88.28125,
        "train_time_s": 312.25,
        "param:compressor": comp,
        "param:optimizer": opt,
        "param:transform": tr,
        "param:compressor.imp.steps": 2,
        "param:optimizer.sam.rho": 0.0626355 * trial,
        "param:train.lr": 0.00523627 / trial,
    }
    for trial, comp, opt, tr in [
        (12, "magnitude_prune", "sam", "lbias_prelu"),
        (130, "token_merge", "adam", "snt"),
        (7, "imp", "sam", "none"),
    ]
]


def test_the_front_at_80_columns_cuts_nothing_and_leads_with_what_matters() -> None:
    text = _render(
        front_table(FRONT, title="Pareto front of mixer_prune", console=Console(width=WIDTH))
    )
    assert "…" not in text
    header = text.splitlines()[1].split()
    assert header == ["trial", "λ_max", "drop", "base", "%", "compr", "%"] + [
        "compressor",
        "optimizer",
        "transform",
    ]
    for plugin in ("magnitude_prune", "token_merge", "lbias_prelu", "adam", "imp"):
        assert plugin in text.split()
    for value in ("12", "130", "1235", "-21.88", "91.41", "88.28"):
        assert value in text.split()
    left_out = _flat(text).split("not shown at this width: ")[1]
    assert left_out == "rho, lr, time s (see --json or --csv)"
    assert "every row: steps=2;" in _flat(text)
    wide = _render(front_table(FRONT, title="front", console=Console(width=200)), width=200)
    assert "not shown" not in wide and "0.0004364" in wide and "312.2" in wide


def test_a_plugin_the_same_in_every_row_is_said_once() -> None:
    rows = [{**row, "param:optimizer": "sam"} for row in FRONT]
    text = _render(front_table(rows, title="front", console=Console(width=WIDTH)))
    assert "every row: optimizer=sam" in _flat(text)
    assert "optimizer" not in text.splitlines()[1]


def test_plugins_table_at_80_columns(
    narrow: None, fake_dist: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    error = "kaboom_an_error_message_longer_than_any_column_could_ever_be_at_eighty_columns"
    fake_dist(
        "acme-broken",
        {"snt_search.compressors": {"boom": "acme_boom:X"}},
        {"acme_boom": f"raise RuntimeError('{error}')\n"},
    )
    assert main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= WIDTH
    for name in ("mixer_s", "magnitude_prune", "lbias_prelu", "imagefolder", "boom"):
        assert name in text.split()
    assert "MLP-Mixer-S of the SNT paper (patch 4, hidden 128," in _flat(text)
    assert error in "".join(text.split())  # folded over lines, never cut


def test_plugins_help_names_the_real_kinds_and_switch(capsys: pytest.CaptureFixture[str]) -> None:
    """``plugins`` spells them out so that its --help need not import the specs (torch)."""
    with pytest.raises(SystemExit):
        main(["plugins", "--help"])
    text = _flat(capsys.readouterr().out)
    assert AUTOLOAD_ENV in text and "{" + ",".join(KINDS) + "}" in text


def test_spaces_table_at_80_columns(narrow: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces"]) == 0
    text = capsys.readouterr().out
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= WIDTH
    rows = {r["name"]: r for r in _spaces_json(capsys)}
    flat = _flat(text)
    # resnet20_compress's three objectives leave no room for descriptions at 80 columns:
    # the caption names the column that did not fit (fit_table's rule), nothing is cut
    shown = "not shown at this width: description" not in flat
    for name, row in rows.items():
        assert name in text.split() and (row["description"] in flat or not shown)
        assert all(objective in flat for objective in row["objectives"])


def _spaces_json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert main(["spaces", "--json"]) == 0
    return list(json.loads(capsys.readouterr().out))


def _failing_runner(
    fail: Mapping[int, Exception], calls: list[int], spec: TrialSpec, **_: Any
) -> TrialResult:
    """Trial ``len(calls)`` raises ``fail[n]`` if given, else returns quick objectives."""
    calls.append(len(calls))
    if calls[-1] in fail:
        raise fail[calls[-1]]
    lr = spec.train.lr
    return TrialResult(metrics={"lambda_max": lr, "accuracy_drop": 1.0 / lr, "base_accuracy": 50.0})


@pytest.fixture
def optuna_records() -> Iterator[list[logging.LogRecord]]:
    """What Optuna's trial warnings leave after snt-search's filters (Optuna's own handler
    holds a stream from before pytest's capture, so the records are checked, not stderr)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    root = logging.getLogger("optuna")
    root.addHandler(handler)
    yield records
    root.removeHandler(handler)


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_failed_trial_is_one_line_and_every_finished_trial_has_one(
    verbose: bool,
    tiny_space: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    optuna_records: list[logging.LogRecord],
) -> None:
    fail = {
        1: TrialFailed("diverged: training loss became nan at epoch 1, step 3 (stage: training)"),
        2: RuntimeError("boom"),
    }
    runner = functools.partial(_failing_runner, fail, [])
    monkeypatch.setattr(driver, "run_study", functools.partial(driver.run_study, runner=runner))
    argv = ["study", "--space", str(tiny_space), "--trials", "4"] + (["-v"] if verbose else [])
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    diverged = (
        "trial 1 failed: diverged: training loss became nan at epoch 1, step 3 (stage: training)"
    )
    assert lines.count(diverged) == 1
    boom = [line for line in lines if line.startswith("trial 2 failed: RuntimeError: boom")]
    assert boom == [
        "trial 2 failed: RuntimeError: boom" + ("" if verbose else " (-v shows the traceback)")
    ]
    complete = [line for line in lines if " complete: lambda_max " in line]
    assert [line.split()[1] for line in complete] == ["0", "3"]
    assert "Traceback" not in out and "Trial 1 failed with parameters" not in out
    warned = [r for r in optuna_records if r.getMessage().startswith("Trial ")]
    if verbose:  # Optuna's own warning, with the traceback, for both failures
        assert {r.getMessage().split()[1] for r in warned} == {"1", "2"}
        assert all(r.exc_info for r in warned if "parameters" in r.getMessage())
    else:
        assert warned == []
    summary = _flat(out).split("study tiny: ")[1]
    assert summary.startswith(
        "4 finished of --trials 4: 2 complete, 2 failed (a finished trial is complete, "
        "early-stopped or failed with a reason; each counts toward --trials); this command ran 4"
    )


def test_study_json_counts_finished_trials_by_the_trials_rule(
    tiny_space: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = functools.partial(_failing_runner, {0: TrialFailed("diverged")}, [])
    monkeypatch.setattr(driver, "run_study", functools.partial(driver.run_study, runner=runner))
    assert main(["study", "--space", str(tiny_space), "--trials", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["trials"], out["finished"], out["complete"], out["failed"]) == (3, 3, 2, 1)


def _trial(state: TrialState, number: int, **attrs: Any) -> optuna.trial.FrozenTrial:
    values = [1.5, 0.25] if state == TrialState.COMPLETE else None
    trial = create_trial(state=state, values=values, user_attrs=attrs)
    trial.number = number
    return trial


@pytest.mark.parametrize(
    ("trial", "line"),
    [
        (_trial(TrialState.COMPLETE, 0), "trial 0 complete: lambda_max 1.5, accuracy_drop 0.25"),
        (
            _trial(TrialState.PRUNED, 1, pruned_reason="early-stopped: test accuracy 9%"),
            "trial 1 early-stopped: early-stopped: test accuracy 9%",
        ),
        (
            _trial(TrialState.FAIL, 2, fail_reason="TrialFailed: diverged"),
            "trial 2 failed: diverged",
        ),
        (
            _trial(TrialState.FAIL, 3, fail_reason="PluginError: no"),
            "trial 3 failed: PluginError: no (-v shows the traceback)",
        ),
        (
            _trial(TrialState.FAIL, 4),
            "trial 4 stopped without a result or a reason: it does not count",
        ),
        (_trial(TrialState.FAIL, 5, surplus="not run"), None),
    ],
)
def test_trial_line(trial: optuna.trial.FrozenTrial, line: str | None) -> None:
    assert trial_line(trial, ["lambda_max", "accuracy_drop"]) == line


def test_worker_processes_trials_are_reported_from_the_storage(workdir: Path) -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.add_trial(_trial(TrialState.COMPLETE, 0))  # before this display: not reported
    console = Console(file=io.StringIO(), width=WIDTH)
    objectives = {"lambda_max": "minimize", "accuracy_drop": "minimize"}
    with StudyProgress(3, objectives, console=console) as progress:
        study.add_trial(_trial(TrialState.FAIL, 1, fail_reason="TrialFailed: diverged"))
        study.add_trial(_trial(TrialState.COMPLETE, 2))
        progress.show_study(study, 1)
        progress.show_study(study, 1)  # each trial once
    lines = [line.strip() for line in console.file.getvalue().splitlines()]  # type: ignore[attr-defined]
    assert [line for line in lines if line.startswith("trial ")] == [
        "trial 1 failed: diverged",
        "trial 2 complete: lambda_max 1.5, accuracy_drop 0.25",
    ]


def test_spaces_check_says_what_a_space_searches(
    tiny_space: Path, narrow: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["spaces", "--check", str(tiny_space), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["plugin_combinations"] == 4  # transform none|snt x optimizer adam|sam
    assert info["continuous"] == ["train.lr", "optimizer.sam.rho"]
    assert info["configurations"] is None and list(info["budgets"]) == ["smoke"]
    assert [p["name"] for p in info["plugins"]["transform"]] == ["none", "snt"]
    assert main(["spaces", "--check", "mixer_prune"]) == 0
    text = capsys.readouterr().out
    assert "…" not in text and "plugins: 8 combinations" in text
    assert "unbounded: continuous parameters train.lr, optimizer.sam.rho" in _flat(text)
    assert "compressor.magnitude_prune.sparsity" in text.split()


def test_a_space_without_continuous_parameters_counts_its_configurations(
    tiny_space: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tiny_space.read_text()
    text = text.replace(
        '"train.lr" = { low = 1e-3, high = 1e-2, log = true }',
        '"train.lr" = { choices = [0.001, 0.01, 0.1] }',
    )
    text = text.replace(
        '"optimizer.sam.rho" = { low = 0.01, high = 0.1 }',
        '"optimizer.sam.rho" = { low = 0.05, high = 0.2, step = 0.05 }',
    )
    tiny_space.write_text(text)
    assert main(["spaces", "--check", str(tiny_space), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    # transform (2) x lr (3) x [adam: 1 + sam: 4 rho values] = 30
    assert (info["continuous"], info["configurations"]) == ([], 30)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('transform = ["none", "snt"]', 'transform = ["none", "snt2"]'), "transform = 'snt2'"),
        (('sampler = "random"', 'sampler = "random"\nbogus = 1'), "bogus"),
        (("[budgets.smoke]", "[budgets.smoke"), ".toml"),
    ],
    ids=["unknown-plugin", "unknown-key", "bad-toml"],
)
def test_spaces_check_of_a_bad_file_is_a_one_line_error(
    change: tuple[str, str], message: str, tiny_space: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_space.write_text(tiny_space.read_text().replace(*change))
    assert main(["spaces", "--check", str(tiny_space)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_study_dry_run_checks_and_runs_nothing(
    tiny_space: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["study", "--space", str(tiny_space), "--trials", "7", "--dry-run"]
    assert main(argv) == 0
    text = _flat(capsys.readouterr().out)
    assert "plugins: 4 combinations" in text
    assert (
        "dry run, nothing ran: the study 'tiny' in sqlite:///snt-search.db would run until 7"
        in text
    )
    assert sorted(p.name for p in workdir.iterdir()) == ["tiny.toml"]  # no storage, no runs/
    assert main([*argv, "--budget", "huge"]) == 2
    assert "no budget 'huge'; this space defines: smoke" in _flat(capsys.readouterr().err)


def test_report_without_plotly_names_the_extra(
    tiny_space: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runner = functools.partial(_failing_runner, {}, [])
    options = driver.StudyOptions(n_trials=2, show_progress=False)
    driver.run_study(load_space(tiny_space), options, runner=runner)
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly raises ImportError
    assert main(["report", "--study-name", "tiny", "--out", "report"]) == 2
    err = _flat(capsys.readouterr().err)
    assert "pip install 'snt-search[report]'" in err and "Traceback" not in err


HEAVY = ("torch", "ray", "plotly", "timm", "torchvision", "matplotlib", "scipy")
PROBE = """
import json, runpy, sys
sys.argv = ["snt-search", *{argv!r}]
try:
    runpy.run_module("snt_search", run_name="__main__")
except SystemExit:
    pass
print("MODULES", json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["--help"], ()),
        (["spaces"], ()),
        (["spaces", "--json"], ()),
        (["pareto", "--help"], ()),
        (["pareto", "--study-name", "ghost"], ()),
        (["report", "--help"], ()),
        (["dashboard", "--help"], ()),
        (["study", "--help"], ("torch", "timm", "torchvision", "scipy")),  # no Ray, no plotly
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_listing_commands_start_without_torch_ray_or_plotly(
    argv: list[str], allowed: tuple[str, ...], workdir: Path
) -> None:
    code = PROBE.format(argv=argv, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("MODULES "))
    imported = set(json.loads(line.removeprefix("MODULES ")))
    assert imported <= set(allowed), f"{argv} imported {sorted(imported - set(allowed))}"


def test_a_study_whose_trials_all_failed_says_why_its_front_is_empty(
    tiny_space: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail = {n: TrialFailed(f"diverged {n}") for n in range(2)}
    runner = functools.partial(_failing_runner, fail, [])
    monkeypatch.setattr(driver, "run_study", functools.partial(driver.run_study, runner=runner))
    assert main(["study", "--space", str(tiny_space), "--trials", "2"]) == 0
    text = _flat(capsys.readouterr().out)
    assert "trial 0 failed: diverged 0 trial 1 failed: diverged 1" in text
    assert "study tiny: 2 finished of --trials 2: 0 complete, 2 failed" in text
    assert "Pareto front of tiny: no complete trial yet" in text
