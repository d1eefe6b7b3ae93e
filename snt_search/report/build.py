"""Write a study's report into a folder: ``report.html``, ``report.md`` and ``trials.csv``.

:func:`write_report` is the whole pipeline (storage -> table -> summary -> files); the CLI
command ``snt-search report`` is a thin layer over it. A folder that cannot be created or
written raises :class:`ReportError` naming the folder, the cause and the fix; nothing is left
half-written (each file is written to a temporary name and renamed).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import StudyData, load_study_data
from .html import render_html
from .markdown import render_markdown
from .summary import Summary, summarize

__all__ = ["ReportError", "ReportFiles", "write_report"]


class ReportError(ValueError):
    """The report could not be written; the message says where, why and what to do."""


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote and what it found."""

    html: Path
    markdown: Path
    csv: Path
    data: StudyData = field(repr=False)
    summary: Summary = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready digest: files, counts, correlation, findings, front trial numbers."""
        return {
            "study": self.data.name,
            "storage": self.data.storage,
            "files": {"html": str(self.html), "markdown": str(self.markdown), "csv": str(self.csv)},
            "trials": len(self.data.trials),
            "finished": len(self.data.finished),
            "failed": len(self.data.failed),
            "front": [r.number for r in self.data.front],
            "correlation": self.summary.correlation.as_dict(),
            "findings": self.summary.findings,
        }


def write_report(
    study_name: str,
    storage: str,
    out_dir: Path,
    *,
    ci_method: str = "fisher",
    confidence: float = 0.95,
) -> ReportFiles:
    """Read ``study_name`` from ``storage`` and write the report files into ``out_dir``.

    Raises :class:`~snt_search.report.data.StudyNotFound` (listing the stored studies) for an
    unknown name and :class:`ReportError` when ``out_dir`` is not a writable folder.
    """
    data = load_study_data(storage, study_name)
    _check_writable(out_dir)
    summary = summarize(data, ci_method=ci_method, confidence=confidence)
    html_path = _write(out_dir / "report.html", render_html(data, summary))
    md_path = _write(out_dir / "report.md", render_markdown(data, summary))
    csv_path = _write(out_dir / "trials.csv", _csv(data))
    return ReportFiles(html_path, md_path, csv_path, data, summary)


def _csv(data: StudyData) -> str:
    records = [r.record() for r in data.trials]
    columns: list[str] = []
    for rec in records:
        columns += [c for c in rec if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns or ["trial"])
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def _check_writable(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"--out {out_dir}: is a file, not a folder; pass a folder path")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".snt-search-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ReportError(
            f"--out {out_dir}: cannot write there ({type(exc).__name__}: {exc.strerror or exc}); "
            f"pass a folder you can write to, e.g. --out runs/report"
        ) from exc


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ReportError(
            f"cannot write {path} ({type(exc).__name__}: {exc.strerror or exc}); "
            f"pass a folder you can write to with --out"
        ) from exc
    return path
