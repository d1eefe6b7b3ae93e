"""bench/reproduce.py end to end on a tiny ImageFolder: train, measure and summary stages
write their JSON and table, a second run adds a seed without redoing the first, and a run
with another protocol into the same folder is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[1] / "bench"

pytestmark = pytest.mark.slow


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("test", 12)):
        for c in range(3):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(n // 3):
                pixels = rng.integers(0, 60, (32, 32, 3)) + 60 * c
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / f"c{c}" / f"{i}.png")
    return root


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH.parent), *sys.path])}
    return subprocess.run(
        [sys.executable, str(BENCH / "reproduce.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def test_three_stages_resume_and_refuse_another_protocol(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    out = tmp_path / "out"
    common = ["--data-dir", str(data), "--out", str(out), "--threads", "1"]
    train = ["train", *common, "--epochs", "2", "--arms", "ADAM", "ARCH"]
    first = _run(*train, "--seeds", "0")
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in (out / "train").iterdir()) == [
        "adam-seed0.json",
        "arch-seed0.json",
    ]
    record = json.loads((out / "train" / "arch-seed0.json").read_text())
    assert record["transform"] == "snt" and len(record["curve"]) == 2
    assert (out / "models" / "arch-seed0.safetensors").is_file()

    again = _run(*train, "--seeds", "0", "1")  # seed 0 is on disk: only seed 1 trains
    assert again.returncode == 0, again.stderr
    assert "adam-seed0 epoch" not in again.stdout and "adam-seed1 epoch 2" in again.stdout

    other = _run("train", *common, "--epochs", "3", "--arms", "ADAM", "--seeds", "2")
    assert other.returncode != 0 and "another training config" in other.stderr

    measured = _run("measure", *common, "--sharpness-samples", "16")
    assert measured.returncode == 0, measured.stderr
    m = json.loads((out / "measure" / "adam-seed1.json").read_text())
    assert set(m["ptq"]) == {
        "w4_per_tensor_ft0",
        "w4_per_tensor_ft1",
        "w4_per_channel_ft0",
        "w4_per_channel_ft1",
    }
    assert len(m["one_shot"]["accuracies"]) == 10 and len(m["imp"]["accuracies"]) == 5
    assert m["lambda_max"] > 0 and 0 <= m["base_accuracy"] <= 100

    summary = _run("summary", "--out", str(out))
    assert summary.returncode == 0, summary.stderr
    text = (out / "summary.md").read_text()
    assert "| ADAM | 0,1 |" in text and "| ARCH | 0,1 |" in text
    assert "Difference from ADAM" in text and "all 4 runs" in text
