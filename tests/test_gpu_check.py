"""bench/gpu_check.sh, the prepared GPU run: it parses, and its --help names every step.

The script itself needs a GPU (or minutes of CPU for `--rehearse`), so the suite only checks
what breaks it before it starts; docs/benchmarks.md ("GPU check") says how it is run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def test_script_parses() -> None:
    out = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_help_lists_the_steps_and_exits_0() -> None:
    out = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    steps = {line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ")}
    assert {"setup", "a", "b", "c1", "c2", "d"} <= steps, out.stdout
    for words in ("pytest -m gpu", "--device cuda", "gpus = 0.5", "--rehearse", "--out"):
        assert words in out.stdout


def test_bad_arguments_exit_2_before_anything_runs(tmp_path: Path) -> None:
    for args in (["--steps", "a,x"], ["--epochs", "many"], ["--frobnicate"]):
        out = subprocess.run(
            ["bash", str(SCRIPT), *args, "--out", str(tmp_path / "out")],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2, (args, out.stderr)
        assert not (tmp_path / "out").exists()
