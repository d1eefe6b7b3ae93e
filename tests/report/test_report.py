"""`snt-search report` end to end: files, content, errors, and plots drawn by a real browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from snt_search.cli import main
from snt_search.report import ReportError, ReportFiles, write_report
from snt_search.report.rerun import rerun_command

from .conftest import STUDY, MakeStudy

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(storage: str, tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return write_report(STUDY, storage, tmp_path_factory.mktemp("out") / "report")


def test_html_holds_front_correlation_failures_and_commands(report: ReportFiles) -> None:
    text = report.html.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    assert "<script src=" not in text  # plotly.js is inlined: the file works offline
    front = re.search(r'<table id="table-front">(.*?)</table>', text, re.S)
    assert front is not None
    assert [r.number for r in report.data.front] == [1, 3]
    assert '<td>1</td><td class="text">none + sam (SAM)</td>' in front.group(1)
    corr = report.summary.correlation
    assert corr.n == 12 and corr.dropped == 2 and corr.low <= corr.rho <= corr.high
    assert html.escape(f"Spearman {corr.describe()}") in text
    assert "TrialFailed: diverged: loss is nan at epoch 1, step 7" in text
    assert "no reason stored" in text
    rerun = re.search(r'<table id="table-rerun">(.*?)</table>', text, re.S)
    assert rerun is not None
    cells = re.findall(r'<td class="code">(.*?)</td>', rerun.group(1))
    commands = [html.unescape(re.sub(r"</?span[^>]*>", "", c)) for c in cells]
    assert commands == [
        rerun_command(report.data.name, r.number, report.data.storage)
        for r in report.data.trials
        if r.config
    ]
    assert len(commands) == 17
    for key in ("front", "sharpness", "compression", "cost", "training"):
        assert f'id="plot-{key}"' in text
    assert "0.51x" in text  # SAM's throughput against ADAM's


def test_markdown_and_csv(report: ReportFiles) -> None:
    md = report.markdown.read_text(encoding="utf-8")
    assert md.startswith(f"# snt-search report: {STUDY}")
    assert "| 1 | none + sam (SAM) | 2.04 |" in md
    assert "## Correlation at each compression level" in md and "| sparsity 0.5 | 4 |" in md
    assert "diverged" in md and md.count("```bash") == 17
    csv_lines = report.csv.read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("trial,state,group,dataset") and len(csv_lines) == 18


def test_cli_json_digest(storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    assert main(["report", "--study-name", STUDY, "--storage", storage, "--out", str(out), "--json", "--ci", "bootstrap"]) == 0  # fmt: skip
    digest = json.loads(capsys.readouterr().out)
    assert digest["finished"] == 14 and digest["failed"] == 2 and digest["front"] == [1, 3]
    assert digest["correlation"]["method"] == "bootstrap"
    assert Path(digest["files"]["html"]).is_file() and (out / "report.md").is_file()


def test_unknown_study_lists_studies(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["report", "--study-name", "typo", "--storage", storage, "--out", str(tmp_path)]) == 2
    )
    err = " ".join(capsys.readouterr().err.split())
    assert "'typo'" in err and f"studies there: {STUDY}" in err
    assert not (tmp_path / "report.html").exists()
    missing = f"sqlite:///{tmp_path / 'typo.db'}"
    assert (
        main(["report", "--study-name", STUDY, "--storage", missing, "--out", str(tmp_path)]) == 2
    )
    assert "no such database file" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "typo.db").exists()


def test_unwritable_out(storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ReportError, match="is a file, not a folder"):
        write_report(STUDY, storage, blocker)
    with pytest.raises(ReportError, match=r"cannot write there .*pass a folder you can write to"):
        write_report(STUDY, storage, blocker / "sub")
    assert main(["report", "--study-name", STUDY, "--storage", storage, "--out", str(blocker / "sub")]) == 2  # fmt: skip
    assert "cannot write there" in " ".join(capsys.readouterr().err.split())


def test_study_without_finished_trials_still_renders(make_study: MakeStudy, tmp_path: Path) -> None:
    files = write_report(STUDY, make_study(filled=False), tmp_path / "empty")
    text = files.html.read_text(encoding="utf-8")
    assert "No trial has finished yet" in text and "Nothing to plot" in text
    assert "Pareto front: none." in text
    assert "No trial has finished yet" in files.markdown.read_text(encoding="utf-8")


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH to run the report's JavaScript; install it with "
    "`apt-get install -y chromium` (.ci/run does)",
)
def test_plots_render_in_headless_chromium(report: ReportFiles, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    argv = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000", "--dump-dom", report.html.resolve().as_uri(),
    ]  # fmt: skip
    dom = subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
    plots = re.findall(r'id="plot-(\w+)"', report.html.read_text(encoding="utf-8"))
    assert len(plots) == 5
    for key in plots:
        start = dom.index(f'id="plot-{key}"')
        nxt = dom.find('id="plot-', start + 1)
        drawn = dom[start : nxt if nxt > 0 else len(dom)]
        assert "plot-container" in drawn and "main-svg" in drawn, f"plot {key} was not drawn"
