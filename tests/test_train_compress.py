"""`snt-search train --compressor`: compress a copy as a trial does, report, export both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from snt_search import load_model
from snt_search.cli import main
from snt_search.data import TensorLoader
from snt_search.export import read_config
from snt_search.pipeline import load_data
from snt_search.training import evaluate
from snt_search.trial_spec import TrialSpec

TINY = [
    "train",
    "--dataset",
    "synthetic",
    "--backbone",
    "mixer_s",
    "--optimizer",
    "adam",
    "--set",
    "dataset.synthetic.train_size=96",
    "--set",
    "dataset.synthetic.test_size=64",
    "--set",
    "backbone.mixer_s.num_blocks=1",
    "--set",
    "backbone.mixer_s.embed_dim=16",
    "--set",
    "backbone.mixer_s.patch_size=8",
    "--batch-size",
    "32",
]


def test_train_with_a_compressor_reports_and_exports_both_models(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        *TINY,
        "--compressor",
        "magnitude_prune",
        "--set",
        "compressor.magnitude_prune.sparsity=0.7",
    ]
    assert main([*argv, "--out", "m", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    c = out["compression"]
    assert c["report"]["sparsity"] == pytest.approx(0.7, abs=0.01)
    assert c["accuracy_drop"] == pytest.approx(c["base_accuracy"] - c["compressed_accuracy"])
    assert c["base_accuracy"] == pytest.approx(out["test_accuracy"])
    assert out["spec"]["params"]["compressor"] == {"sparsity": 0.7}
    # each folder rebuilds and gives back the accuracy the command printed
    for which, key in (("trained", "base_accuracy"), ("compressed", "compressed_accuracy")):
        folder = workdir / "m" / which
        assert sorted(p.name for p in folder.iterdir()) == [
            "README.md",
            "config.json",
            "model.safetensors",
        ]
        config = read_config(folder / "model.safetensors")
        assert config.which == which and config.plugins["compressor"] == "magnitude_prune"
        model = load_model(folder)
        data = load_data(TrialSpec.from_dict(out["spec"]))
        loader = TensorLoader.from_bundle(data, "test", batch_size=64, device=torch.device("cpu"))
        assert evaluate(model, loader) == pytest.approx(c[key], abs=1e-6)
    zeros = sum(int((p == 0).sum()) for p in load_model(workdir / "m/compressed").parameters())
    assert zeros > 0

    # an existing --out is refused (before training)
    assert main([*argv, "--out", "m"]) == 2
    assert "exists" in capsys.readouterr().err


def test_train_with_a_compressor_prints_both_accuracies_and_the_report(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*TINY, "--compressor", "ptq", "--set", "compressor.ptq.weight_bits=4"]) == 0
    text = capsys.readouterr().out
    assert "ptq: base accuracy" in text and "compressed" in text and "drop" in text
    assert "report:" in text


def test_a_set_for_a_compressor_not_chosen_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main([*TINY, "--compressor", "ptq", "--set", "compressor.magnitude_prune.sparsity=0.5"])
        == 2
    )
    assert "compressor 'magnitude_prune' is not among the chosen" in " ".join(
        capsys.readouterr().err.split()
    )
