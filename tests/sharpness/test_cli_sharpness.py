"""`snt-search sharpness` on a tiny Mixer and the offline digits data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snt_search.checkpoint import save_checkpoint
from snt_search.cli import main
from snt_search.pipeline import build_model, load_data
from snt_search.trial_spec import TrialSpec

TINY = {"num_blocks": 1, "embed_dim": 16, "patch_size": 8}
SETS = [arg for k, v in TINY.items() for arg in ("--set", f"backbone.mixer_s.{k}={v}")]
BASE = ["sharpness", "--dataset", "digits", "--backbone", "mixer_s", "--samples", "24"]


def test_json_reports_the_result_and_its_setup(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, *SETS, "--batch-size", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 24 and out["method"] == "lanczos"
    assert out["lambda_max"] == out["eigenvalues"][0] and out["hvp_count"] >= 1
    assert out["params"] == {"backbone": TINY} and out["transform"] == "none"


def test_checkpoint_params_are_reused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = TrialSpec(
        plugins={"dataset": "digits", "backbone": "mixer_s", "transform": "none"},
        params={"backbone": TINY},
    )
    model, _ = build_model(spec, load_data(spec))
    path = save_checkpoint(tmp_path / "model.safetensors", model, metadata={"spec": spec.as_dict()})
    argv = [*BASE, "--checkpoint", str(path), "--method", "power", "--max-iter", "2"]
    assert main(argv) == 0  # params come from the checkpoint: no --set needed
    captured = capsys.readouterr()
    assert "lambda_max" in captured.out and "power" in captured.out
    assert "not converged" in captured.err  # max_iter=2 is reported, not hidden


def test_bad_set_explains_the_expected_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--set", "backbone.resnet.depth=2"]) == 2
    assert "<kind>.<plugin>.<param>" in capsys.readouterr().err
