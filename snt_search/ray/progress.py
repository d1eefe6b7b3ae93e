"""The local driver's live display (:class:`~snt_search.progress.StudyProgress`) for Ray runs.

Ray Tune pickles its callbacks with the experiment (to restore it), and a live terminal
display does not pickle; so :class:`ProgressCallback` holds nothing and draws on the display
that :func:`showing` makes current in the driver process, for a new and a restored experiment
alike. The trial bar and best values are read from the study after each trial; the epoch bar
follows whichever trial reported last.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from ray.tune import Callback

from ..progress import StudyProgress
from ..training import EpochStats
from .trainable import RESULT_KEY

__all__ = ["ProgressCallback", "showing"]

_ACTIVE: list[tuple[StudyProgress, optuna.Study, int]] = []


@contextmanager
def showing(progress: StudyProgress, study: optuna.Study, finished_before: int) -> Iterator[None]:
    """Make ``progress`` the display :class:`ProgressCallback` draws on while inside."""
    _ACTIVE.append((progress, study, finished_before))
    try:
        yield
    finally:
        _ACTIVE.remove((progress, study, finished_before))


class ProgressCallback(Callback):
    """A Ray Tune callback that updates the current :func:`showing` display, if any."""

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        if not _ACTIVE or "epoch" not in result or RESULT_KEY in result:
            return
        progress = _ACTIVE[-1][0]
        config = trial.config
        if int(result["epoch"]) == int(result.get("from_epoch", 0)) + 1:
            epochs = config["spec"].train.epochs
            progress.start_trial(int(config["trial"]), str(config.get("label", "")), epochs)
        progress.epoch(
            EpochStats(
                epoch=int(result["epoch"]),
                loss=float(result["loss"]),
                train_accuracy=float(result["train_accuracy"]),
                test_accuracy=float(result["test_accuracy"]),
                seconds=float(result["epoch_seconds"]),
            )
        )

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._refresh()  # the searcher may tell a trial after the callbacks heard it end

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._refresh()

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._refresh()

    def _refresh(self) -> None:
        if _ACTIVE:
            progress, study, finished_before = _ACTIVE[-1]
            progress.show_study(study, finished_before)
