"""`snt-search dashboard` serves each trial's stored models: optuna-dashboard's trial page
lists them as artifacts (rendered in headless Chromium) and the links download the files."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from test_dashboard import CHROMIUM, _free_port, _render

from snt_search.driver import StudyOptions, run_study
from snt_search.export.artifacts import ARTIFACTS_ATTR
from snt_search.space import load_space


@pytest.fixture
def served(tiny_space: Path, workdir: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{workdir / 'dash.db'}"
    options = StudyOptions(n_trials=2, storage=url, show_progress=False, keep_models="all")
    run_study(load_space(tiny_space), options)
    port = _free_port()
    log = (workdir / "dashboard.log").open("w")
    argv = [sys.executable, "-m", "snt_search", "dashboard", "--storage", url]
    proc = subprocess.Popen([*argv, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
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
        yield f"http://127.0.0.1:{port}", url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    assert "models served from: " in (workdir / "dashboard.log").read_text()


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install -y chromium; .ci/run installs it)",
)
def test_the_trial_page_lists_and_serves_the_trials_models(
    served: tuple[str, str], workdir: Path
) -> None:
    base, storage = served
    (trial, *_) = optuna.load_study(study_name="tiny", storage=storage).trials
    ids = trial.user_attrs[ARTIFACTS_ATTR]
    page = _render(f"{base}/dashboard/studies/1/trials?numbers={trial.number}", workdir)
    for which, artifact_id in ids.items():
        link = re.search(rf'download="{which}.safetensors" href="([^"]*{artifact_id}[^"]*)"', page)
        assert link is not None, f"no {which} model on the trial page"
        with urllib.request.urlopen(base + link.group(1), timeout=30) as response:
            body = response.read()
        assert body == (workdir / "runs/tiny/artifacts" / artifact_id).read_bytes()


def test_an_artifacts_folder_that_does_not_exist_is_a_one_line_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from snt_search.cli import main

    url = f"sqlite:///{workdir / 'empty.db'}"
    optuna.create_study(study_name="s", storage=url)
    assert main(["dashboard", "--storage", url, "--artifacts", "nowhere"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "artifact store" in err and "nowhere" in err and "Fix" in err
