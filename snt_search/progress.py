"""Live progress of a study in the terminal: a bar for trials, one for the running trial's
epochs, and the best value of each objective so far (rich).

In one process the driver reports each trial and epoch; with worker processes the parent
polls the storage instead (:meth:`StudyProgress.show_study`) and shows no epoch bar."""

from __future__ import annotations

import math
from types import TracebackType

import optuna
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .training import EpochStats

__all__ = ["StudyProgress"]


class StudyProgress:
    """Context manager; ``enabled=False`` (``--json``) makes every call a no-op."""

    def __init__(
        self,
        total: int,
        objectives: dict[str, str],
        *,
        enabled: bool = True,
        console: Console | None = None,
    ):
        self.enabled = enabled
        self.objectives = objectives
        self.best: dict[str, float] = {}
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            disable=not enabled,
        )
        self.trials = self.progress.add_task("trials", total=total, info="")
        self.epochs = self.progress.add_task("epochs", total=1, info="", visible=False)

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

    def end_trial(self, values: dict[str, float] | None) -> None:
        if values:
            self._better(values)
        info = "  ".join(f"best {k} {v:.4g}" for k, v in self.best.items())
        self.progress.update(self.trials, advance=1, info=info)

    def show_study(self, study: optuna.Study, finished_before: int) -> None:
        """Refresh the trial bar and the best values from the storage (worker processes)."""
        if not self.enabled:
            return
        finished = 0
        names = list(self.objectives)
        for t in study.get_trials(deepcopy=False):
            if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) or (
                t.state == optuna.trial.TrialState.FAIL and "fail_reason" in t.user_attrs
            ):
                finished += 1
            if t.state == optuna.trial.TrialState.COMPLETE and t.values is not None:
                self._better(dict(zip(names, t.values, strict=False)))
        info = "  ".join(f"best {k} {v:.4g}" for k, v in self.best.items())
        self.progress.update(self.trials, completed=finished - finished_before, info=info)

    def _better(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            if not math.isfinite(value):
                continue
            better = min if self.objectives.get(name) == "minimize" else max
            self.best[name] = better(self.best.get(name, value), value)
