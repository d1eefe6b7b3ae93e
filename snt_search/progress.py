"""Live progress of a study in the terminal: a bar for trials with its ETA (from the trials
finished so far), one for the running trial's epochs and then its phase (``lambda_max``,
``compress``, ``sweep``: :meth:`StudyProgress.phase`), the current Pareto front's size and the
best value of each objective on it with its trial (over the whole study, a resumed one too),
and one line per finished trial in the scrollback (:func:`trial_line`): its number, state, and
objectives or reason. A resumed study starts with ``resuming: k of N trials finished``.

In one process the driver reports each trial and epoch, and hands :meth:`StudyProgress.
trial_done` to Optuna as a callback; with worker processes (or Ray) the parent polls the
storage instead (:meth:`StudyProgress.show_study`), prints the same lines and shows no epoch
bar. Optuna's own warning for a failed trial carries the whole traceback; the driver drops it
with :class:`QuietTrialFailures` unless ``verbose`` (``snt-search study -v``), so a failed
trial is the one line ``trial 3 failed: diverged: ...``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from .training import EpochStats

__all__ = ["PHASE_ATTR", "QuietTrialFailures", "StudyProgress", "front_summary", "trial_line"]

PHASE_ATTR = "phase"  # a worker process's running trial: "epoch 3/10", "lambda_max", ...

EXPECTED = "TrialFailed: "  # the prefix of a reason the pipeline gave (no traceback helps)
VERBOSE_HINT = " (-v shows the traceback)"
_FAILED = re.compile(r"Trial \d+ failed\b")


def trial_line(
    trial: FrozenTrial, objectives: Sequence[str], *, verbose: bool = False
) -> str | None:
    """One plain-text line for a trial that ended, or None for one that never counts.

    COMPLETE: ``trial 2 complete: lambda_max 1.27, accuracy_drop 0.5``; PRUNED: ``trial 4
    early-stopped: <pruned_reason>``; FAIL with a recorded reason: ``trial 3 failed: <reason>``
    (``TrialFailed: `` left out; other errors add a hint at ``-v`` unless ``verbose``). A FAIL
    without a reason does not count toward ``--trials``: a trial whose worker died or was
    interrupted (it is queued again) gets a line saying so, a surplus trial (never run) None.
    """
    n = trial.number
    if trial.state == TrialState.COMPLETE:
        values = trial.values or []
        shown = ", ".join(f"{k} {v:.4g}" for k, v in zip(objectives, values, strict=False))
        return f"trial {n} complete: {shown}"
    if trial.state == TrialState.PRUNED:
        return f"trial {n} early-stopped: {trial.user_attrs.get('pruned_reason', '')}".rstrip()
    if trial.state != TrialState.FAIL or "surplus" in trial.user_attrs:
        return None
    reason = trial.user_attrs.get("fail_reason")
    if reason is None:
        return f"trial {n} stopped without a result or a reason: it does not count"
    reason = str(reason)
    if reason.startswith(EXPECTED):
        return f"trial {n} failed: {reason.removeprefix(EXPECTED)}"
    return f"trial {n} failed: {reason}{'' if verbose else VERBOSE_HINT}"


class QuietTrialFailures(logging.Filter):
    """A filter for Optuna's trial logger that drops its "Trial N failed ..." warnings.

    Optuna logs each failed trial with its parameters and the whole traceback; snt-search
    records the reason (``fail_reason``) and prints one line instead (:func:`trial_line`).
    ``verbose`` keeps the warnings (``-v``: the traceback of an unexpected error)."""

    def __init__(self, verbose: bool = False) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        return self.verbose or not _FAILED.match(record.getMessage())


class StudyProgress:
    """Context manager; ``enabled=False`` (``--json``) makes every call a no-op."""

    def __init__(
        self,
        total: int,
        objectives: dict[str, str],
        *,
        enabled: bool = True,
        console: Console | None = None,
        verbose: bool = False,
    ):
        self.enabled = enabled
        self.objectives = objectives
        self.verbose = verbose
        self.front_info = ""  # "front 3 · lambda_max 12.3 (#4) · ..." of the whole study
        self.progress = _Display(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            disable=not enabled,
        )
        self.trials = self.progress.add_task("trials", total=total, info="")
        self.epochs = self.progress.add_task("epochs", total=1, info="", visible=False)
        self.since = datetime.now()  # trials that ended before are not reported again
        self.reported: set[int] = set()

    def __enter__(self) -> StudyProgress:
        self.progress.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.__exit__(et, e, tb)

    def start_trial(self, number: int, label: str, epochs: int) -> None:
        self.progress.reset(
            self.epochs, total=epochs, visible=True, description=f"trial {number}", info=label
        )

    def epoch(self, stats: EpochStats) -> None:
        info = f"loss {stats.loss:.3f}  test acc {stats.test_accuracy:.1f}%"
        self.progress.update(self.epochs, advance=1, info=info)

    def phase(self, name: str) -> None:
        """The running trial left training for ``name`` (``lambda_max``, ``compress``, ...)."""
        self.progress.update(self.epochs, info=f"{name} ...")

    def note(self, text: str) -> None:
        """A line in the scrollback, e.g. ``resuming: 3 of 8 trials finished``."""
        if self.enabled:
            self.progress.console.print(escape(text), highlight=False, soft_wrap=True)

    def resuming(self, study: optuna.Study, finished: int, target: int) -> None:
        """Say how far a resumed study is, and show its front, before any trial runs."""
        if finished:
            left = target - finished
            tail = f"; {left} to run" if left > 0 else "; nothing to run (raise --trials for more)"
            self.note(f"resuming: {finished} of {target} trials finished{tail}")
            self.show_front(study)

    def end_trial(self, values: dict[str, float] | None) -> None:
        self.progress.update(self.trials, advance=1)
        self.progress.update(self.epochs, info="done")

    def trial_done(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """An Optuna callback: print the line of ``trial``, which has just ended, and show
        the study's front."""
        self._report(trial)
        self.show_front(study)

    def show_study(self, study: optuna.Study, finished_before: int) -> None:
        """Refresh the trial bar and the best values from the storage (worker processes), and
        print the line of each trial that ended since this display started."""
        if not self.enabled:
            return
        finished = 0
        running = []
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                t.state == TrialState.FAIL and "fail_reason" in t.user_attrs
            ):
                finished += 1
            if t.datetime_complete is not None and t.datetime_complete >= self.since:
                self._report(t)
            if t.state == TrialState.RUNNING and PHASE_ATTR in t.user_attrs:
                running.append(f"#{t.number} {t.user_attrs[PHASE_ATTR]}")
        self.progress.update(
            self.trials, completed=finished - finished_before, info="  ".join(running)
        )
        self.show_front(study)

    def show_front(self, study: optuna.Study) -> None:
        if self.enabled:
            self.front_info = front_summary(study, list(self.objectives))
            self.progress.front = self.front_info
            self.progress.refresh()

    def _report(self, trial: FrozenTrial) -> None:
        if not self.enabled or trial.number in self.reported:
            return
        self.reported.add(trial.number)
        line = trial_line(trial, list(self.objectives), verbose=self.verbose)
        if line is not None:
            self.progress.console.print(escape(line), highlight=False, soft_wrap=True)


class _Display(Progress):
    """rich's Progress with the study's front on a line of its own under the bars."""

    front = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.front:
            yield Text(self.front, overflow="fold")


def front_summary(study: optuna.Study, objectives: Sequence[str]) -> str:
    """``front 3 · lambda_max 12.3 (#4) · accuracy_drop 0.51 (#2)``: the size of the study's
    Pareto front and, per objective, the best value on it and its trial ("" while empty)."""
    from .pareto import front_trials

    front = front_trials(study)
    if not front:
        return ""
    parts = [f"front {len(front)}"]
    points = [(t.number, list(t.values or [])) for t in front]  # front trials have values
    for i, (name, direction) in enumerate(zip(objectives, study.directions, strict=False)):
        sign = 1.0 if direction == optuna.study.StudyDirection.MINIMIZE else -1.0
        number, values = min(points, key=lambda p: sign * p[1][i])
        parts.append(f"{name} {values[i]:.4g} (#{number})")
    return " · ".join(parts)
