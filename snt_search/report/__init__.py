"""Study reports: one self-contained HTML page and a Markdown summary of a stored study.

``write_report(study_name, storage, out_dir)`` reads a study written by ``snt-search study``
and writes ``report.html`` (Pareto front, lambda_max vs accuracy drop with Spearman's rho and
its confidence interval, accuracy under compression per transform x optimizer, training cost,
failures, re-run commands), ``report.md`` and ``trials.csv``. The pieces are usable alone:
:mod:`.data` (the tidy table), :mod:`.stats` (Spearman + CI), :mod:`.figures`,
:mod:`.summary` and :mod:`.tables` (findings and tables), :mod:`.html`, :mod:`.markdown`,
:mod:`.rerun` (the ``snt-search rerun`` line of a trial).
See docs/report.md.
"""

from __future__ import annotations

from .build import ReportError, ReportFiles, write_report
from .data import StudyData, StudyNotFound, TrialRow, load_study_data, study_data
from .rerun import rerun_command
from .stats import Correlation, spearman
from .summary import Summary, summarize

__all__ = [
    "Correlation",
    "ReportError",
    "ReportFiles",
    "StudyData",
    "StudyNotFound",
    "Summary",
    "TrialRow",
    "load_study_data",
    "rerun_command",
    "spearman",
    "study_data",
    "summarize",
    "write_report",
]
