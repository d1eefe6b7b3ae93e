"""A trial's re-run commands: `snt-search rerun` for the whole pipeline, and the `snt-search
train` line that parses back, with the CLI's own parser, into the same trial."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from snt_search.cli import build_parser
from snt_search.cli._common import parse_sets
from snt_search.cli.train import spec_from_args
from snt_search.report.data import load_study_data
from snt_search.report.rerun import TRAIN_KINDS, rerun_command, toml_value, train_command

from .conftest import STUDY, config


def _round_trip(cfg: dict[str, Any]) -> dict[str, Any]:
    words = shlex.split(train_command(cfg))
    assert words[:2] == ["snt-search", "train"]
    args = build_parser().parse_args(words[1:])
    return spec_from_args(args).as_dict()


def _expected(cfg: dict[str, Any]) -> dict[str, Any]:
    kinds = (*TRAIN_KINDS, "compressor")
    params = {k: v for k, v in cfg["params"].items() if k in kinds and v}
    plugins = {k: cfg["plugins"][k] for k in kinds}
    return {"plugins": plugins, "params": params, "train": cfg["train"], "seed": cfg["seed"]}


def test_every_stored_trial_round_trips(storage: str) -> None:
    rows = [r for r in load_study_data(storage, STUDY).trials if r.config]
    assert len(rows) == 17
    for row in rows:
        assert row.config is not None
        got = _round_trip(row.config)
        assert {k: got[k] for k in ("plugins", "params", "train", "seed")} == _expected(row.config)
        for key in ("train_subset", "test_subset"):
            assert got["budget"][key] == row.config["budget"][key]
        assert got["data_dir"] == row.config["data_dir"] and got["device"] == row.config["device"]


def test_awkward_values_round_trip() -> None:
    cfg = config("snt", "sam", lr=1.2345678901234567e-05)
    cfg["params"]["optimizer"] = {"rho": 0.05, "adaptive": True}
    cfg["params"]["dataset"] = {"label": 'it\'s a "test" | x', "flag": "true", "sizes": [1, 2]}
    cfg["train"]["schedule"] = "constant"
    cfg["data_dir"] = "/data/my images"
    cfg["device"] = "cuda:1"
    words = shlex.split(train_command(cfg))
    sets = parse_sets([w for i, w in enumerate(words) if i and words[i - 1] == "--set"])
    assert sets["dataset.digits.label"] == 'it\'s a "test" | x'
    assert sets["dataset.digits.flag"] == "true"  # a string, not a bool
    assert sets["dataset.digits.sizes"] == [1, 2]
    assert sets["optimizer.sam.adaptive"] is True
    assert float(words[words.index("--lr") + 1]) == cfg["train"]["lr"]  # repr: exact
    assert words[words.index("--data-dir") + 1] == "/data/my images"
    assert words[words.index("--device") + 1] == "cuda:1"
    got = _round_trip({**cfg, "params": {k: v for k, v in cfg["params"].items() if k != "dataset"}})
    assert got["train"] == cfg["train"] and got["params"]["optimizer"] == cfg["params"]["optimizer"]


def test_toml_values() -> None:
    for value in (True, 3, -0.5, 1e-5, "cosine", "true", [1, "a"], float("inf")):
        assert parse_sets([f"k={toml_value(value)}"])["k"] == value
    with pytest.raises(ValueError, match="bool, number, string or list"):
        toml_value({"a": 1})


def test_missing_plugin_is_refused_and_the_compressor_is_passed_on() -> None:
    cfg = config("none", "adam", sparsity=0.7)
    words = shlex.split(train_command(cfg))
    assert words[words.index("--compressor") + 1] == cfg["plugins"]["compressor"]
    assert f"compressor.{cfg['plugins']['compressor']}.sparsity=0.7" in words
    del cfg["plugins"]["optimizer"]
    with pytest.raises(ValueError, match="no optimizer plugin"):
        train_command(cfg)


def test_rerun_command_names_the_study_trial_and_a_non_default_storage() -> None:
    cmd = rerun_command("my study", 7, "postgresql://db/snt")
    assert shlex.split(cmd) == [
        "snt-search",
        "rerun",
        "--study-name",
        "my study",
        "--trial",
        "7",
        "--storage",
        "postgresql://db/snt",
    ]
    args = build_parser().parse_args(shlex.split(cmd)[1:])
    assert (args.study_name, args.trial, args.storage) == ("my study", 7, "postgresql://db/snt")
    assert "--storage" not in rerun_command("s", 1, "sqlite:///snt-search.db")
