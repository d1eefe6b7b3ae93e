"""`snt-search dashboard` serves the study to a real browser: headless Chromium renders the
study page with its Pareto-front plot and the trials list. `snt-search pareto` writes the front
as JSON, CSV, HTML (plotly) and PNG (matplotlib).

CI installs Debian's chromium (.ci/run); without it the browser test is skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snt_search.cli import main
from snt_search.driver import StudyOptions, run_study
from snt_search.pipeline import TrialResult
from snt_search.space import load_space
from snt_search.trial_spec import TrialSpec

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def scattered_runner(spec: TrialSpec, **_: Any) -> TrialResult:
    """A no-op trial whose objectives leave some trials off the front."""
    lr = spec.train.lr
    drop = 1.0 / lr if spec.plugins["transform"] == "snt" else 2.0 / lr
    return TrialResult(
        metrics={"lambda_max": lr, "accuracy_drop": drop, "base_accuracy": 50.0},
        curve=[{"epoch": 1, "test_accuracy": 50.0}],
    )


@pytest.fixture
def study_db(tiny_space: Path, workdir: Path) -> str:
    url = f"sqlite:///{workdir / 'dash.db'}"
    options = StudyOptions(n_trials=8, storage=url, show_progress=False)
    run_study(load_space(tiny_space), options, runner=scattered_runner)
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dashboard(study_db: str, workdir: Path) -> Iterator[str]:
    port = _free_port()
    log = (workdir / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snt_search",
            "dashboard",
            "--storage",
            study_db,
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (workdir / "dashboard.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the dashboard did not listen within 90 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _render(url: str, tmp: Path) -> str:
    """The DOM after the page's scripts ran (headless Chromium, no network but 127.0.0.1)."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        "--window-size=1400,1000",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install -y chromium; .ci/run installs it)",
)
def test_dashboard_renders_study_trials_and_pareto_plot(dashboard: str, workdir: Path) -> None:
    study_page = _render(f"{dashboard}/dashboard/studies/1", workdir)
    assert ">tiny<" in study_page  # the study's name in the header
    plot = re.search(r'id="graph-pareto-front".*?</svg>', study_page, re.S)
    assert plot is not None, "no Pareto-front plot on the study page"
    assert "js-plotly-plot" in study_page[: plot.end()]
    assert len(re.findall(r'class="point"', plot.group(0))) >= 8  # one marker per trial
    assert "lambda_max" in study_page and "accuracy_drop" in study_page  # metric names

    trials_page = _render(f"{dashboard}/dashboard/studies/1/trials", workdir)
    assert all(f"Trial {n}" in trials_page for n in range(8))


def test_pareto_command_writes_json_csv_html_png(
    study_db: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["pareto", "--study-name", "tiny", "--storage", study_db]
    files = ["--csv", "f.csv", "--html", "f.html", "--png", "f.png"]
    assert main([*args, *files, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["param:transform"] == "snt" for r in rows)  # none dominated
    assert (workdir / "f.csv").read_text().startswith("trial,lambda_max,accuracy_drop")
    html = (workdir / "f.html").read_text()
    assert "plotly" in html and "Pareto" in html
    assert "Hypervolume history" in html
    assert (workdir / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args) == 0
    assert "hypervolume" in capsys.readouterr().out
