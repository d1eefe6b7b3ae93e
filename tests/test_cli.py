"""The command line: help, --json everywhere, and clear errors for bad arguments."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from snt_search.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("command", [c.__name__.rsplit(".", 1)[-1] for c in COMMANDS])
def test_every_command_has_help_and_json(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--json" in text and len(text) > 200


def test_installed_console_script_runs() -> None:
    script = shutil.which("snt-search") or str(Path(sys.executable).with_name("snt-search"))
    for argv in ([script, "--version"], [sys.executable, "-m", "snt_search", "--version"]):
        out = subprocess.run(argv, capture_output=True, text=True, check=True)
        assert out.stdout.startswith("snt-search ")


def test_plugins_json_lists_builtins_with_origin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    mixer = next(r for r in rows if r["kind"] == "backbone" and r["name"] == "mixer_s")
    assert mixer["dist"] == "snt-search" and mixer["builtin"] and mixer["summary"]
    assert mixer["entry_point"] == "snt_search_builtins.backbones.mixer:MixerS"
    assert "num_blocks" in mixer["defaults"]


def test_plugins_table_shows_broken_plugin_and_strict_fails(
    fake_dist, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    fake_dist(
        "acme-broken",
        {"snt_search.compressors": {"boom": "acme_boom:X"}},
        {"acme_boom": "raise RuntimeError('kaboom')\n"},
    )
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "BROKEN" in out and "acme-broken[boom]" in " ".join(out.split())
    assert main(["plugins", "--strict"]) == 2
    assert "kaboom" in capsys.readouterr().err


def test_spaces_lists_the_builtin_space(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["mixer_prune"]["error"] is None
    assert rows["mixer_prune"]["budgets"] == ["smoke", "short", "paper"]
    assert rows["mixer_prune"]["sampler"] == "nsga2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["study", "--space", "no_such_space"], "no such space; known spaces:"),
        (
            ["study", "--space", "mixer_prune", "--budget", "huge"],
            "no budget 'huge'; this space defines: smoke, short, paper",
        ),
        (
            ["study", "--space", "mixer_prune", "--dataset", "imagenet"],
            "dataset = 'imagenet' is not an installed dataset",
        ),
        (["study", "--space", "mixer_prune", "--set", "train.lr"], "expected KEY=VALUE"),
        (
            ["study", "--space", "mixer_prune", "--set", "optimizer.sam.rhoo=1"],
            "--set optimizer.sam.rhoo=1: optimizer 'sam' has no parameter 'rhoo'; it accepts: "
            "adaptive, base, momentum, rho (did you mean 'rho'?)",
        ),
        (
            ["study", "--space", "mixer_prune", "--set", "train.lrr=0.1"],
            "--set train.lrr=0.1: train has no field 'lrr'; fields: epochs,",
        ),
        (
            ["study", "--space", "mixer_prune", "--set", "foo=1"],
            "--set foo=1: KEY must be train.<field> or <kind>.<plugin>.<param>",
        ),
        (
            ["study", "--space", "mixer_prune", "--storage", "redis://x"],
            "is not a storage URL; use sqlite:///",
        ),
        (
            ["pareto", "--study-name", "ghost"],
            "--storage sqlite:///snt-search.db: no such database file 'snt-search.db'",
        ),
        (
            ["study", "--space", "mixer_prune", "--ray-address", "127.0.0.1:6379"],
            "--ray-address only applies to --driver ray",
        ),
    ],
)
def test_bad_arguments_give_clear_errors(
    argv: list[str], message: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err, err
    if "--set" in argv:  # a command-line typo is not blamed on the space file
        assert ".toml" not in err, err


@pytest.mark.parametrize(
    "argv", [["study"], ["study", "--space", "x", "--trials", "0"], ["nonsense"]]
)
def test_argparse_rejects_malformed_command_lines(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    assert "error" in capsys.readouterr().err


def test_train_command_trains_saves_and_reports(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train",
        "--dataset",
        "synthetic",
        "--backbone",
        "mixer_s",
        "--transform",
        "snt",
        "--optimizer",
        "sam",
        "--epochs",
        "2",
        "--set",
        "backbone.mixer_s.num_blocks=1",
        "--set",
        "backbone.mixer_s.embed_dim=16",
        "--set",
        "optimizer.sam.rho=0.1",
        "--set",
        "train.augment=false",
        "--out",
        "out",
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["curve"]) == 2 and out["images_per_s"] > 0 and 0 <= out["test_accuracy"] <= 100
    assert (
        out["spec"]["params"]["optimizer"] == {"rho": 0.1}
        and out["spec"]["train"]["augment"] is False
    )
    assert out["transform_report"]["transform"] == "snt"
    from snt_search.checkpoint import read_metadata

    assert read_metadata(workdir / "out/model.safetensors")["spec"]["plugins"]["transform"] == "snt"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--set", "optimizer.adam.rho=0.1"],
            "--set optimizer.adam.rho=0.1: optimizer 'adam' is not among the chosen optimizers "
            "(sam)",
        ),
        (["--set", "train.speed=3"], "--set train.speed=3: train has no field 'speed'; fields:"),
        (
            ["--set", "optimizer.sam.rhoo=1"],
            "--set optimizer.sam.rhoo=1: optimizer 'sam' has no parameter 'rhoo'",
        ),
        (["--set", "train.lr=fast"], '--set train.lr="fast": takes float values'),
        (["--optimizer", "lion"], "no optimizer named 'lion'; available: adam"),
    ],
)
def test_train_command_rejects_bad_settings(
    extra: list[str], message: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train",
        "--dataset",
        "synthetic",
        "--backbone",
        "mixer_s",
        "--optimizer",
        "sam",
        *extra,
    ]
    assert main(argv) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_sharpness_set_typo_names_the_set(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sharpness", "--dataset", "digits", "--backbone", "mixer_s"]
    assert main([*argv, "--set", "backbone.mixer_s.num_blockss=1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--set backbone.mixer_s.num_blockss=1: backbone 'mixer_s' has no parameter" in err
    assert "(did you mean 'num_blocks'?)" in err


READ_ONLY = [
    ["pareto", "--study-name", "tiny"],
    ["report", "--study-name", "tiny"],
    ["dashboard"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("storage", "missing"),
    [
        (None, "no such database file 'snt-search.db'"),
        ("sqlite:///runs/other.db", "no such database file 'runs/other.db'"),
        ("journal:study.log", "no such journal file 'study.log'"),
        ("study.log", "no such journal file 'study.log'"),
    ],
)
def test_read_only_commands_never_create_a_storage(
    command: list[str],
    storage: str | None,
    missing: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = command + ([] if storage is None else ["--storage", storage])
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"--storage {storage or 'sqlite:///snt-search.db'}: {missing}" in err, err
    assert "read-only commands never create a storage. Fix: pass --storage" in err, err
    assert len(err.split("error: ")) == 2 and err.count("Traceback") == 0
    assert sorted(p.name for p in workdir.iterdir()) == []  # no db, journal, lock or runs/


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: c[0])
def test_read_only_commands_refuse_an_empty_database_file_and_leave_it(
    command: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The empty file an older snt-search left behind is no storage and stays untouched."""
    (workdir / "snt-search.db").touch()
    assert main(command) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--storage sqlite:///snt-search.db: holds no Optuna storage" in err, err
    assert sorted(p.name for p in workdir.iterdir()) == ["snt-search.db"]
    assert (workdir / "snt-search.db").stat().st_size == 0


def test_pareto_on_an_existing_storage_lists_its_studies(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna

    from snt_search.storage import DEFAULT_STORAGE, open_storage

    optuna.create_study(storage=open_storage(DEFAULT_STORAGE), study_name="real")
    assert main(["pareto", "--study-name", "ghost"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "--study-name 'ghost': no such study in sqlite:///snt-search.db; studies there: real" in err
    )
