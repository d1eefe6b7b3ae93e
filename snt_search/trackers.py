"""Experiment trackers fed from the study: ``snt-search study --track tensorboard``.

A tracker is an Optuna callback (:mod:`snt_search.callbacks`) that reads what the study stored
for a finished trial (its config, per-epoch curve, metrics, reason) and writes it to the
tracker, so it works the same on the local driver, with worker processes and on Ray, and never
slows a trial down.

:class:`TensorBoardTracker` writes one log directory per trial, ``DIR/trial-00003``: the curve
as scalars per epoch (``epoch/loss``, ``epoch/train_accuracy``, ``epoch/test_accuracy``), each
numeric metric as ``metric/<name>``, the trial's state and reason as text, and for a complete
trial its searched parameters against its objectives in TensorBoard's HParams plugin. View with
``tensorboard --logdir DIR``. It uses tensorboardX (installed with Ray Tune; the extra
``snt-search[tensorboard]`` names it), so TensorFlow and TensorBoard itself are not needed to
write the files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a space file names trackers: reading one must not import optuna
    import optuna
    from optuna.trial import FrozenTrial

__all__ = ["TRACKERS", "TensorBoardTracker", "make_tracker"]

CURVE_KEYS = ("loss", "train_accuracy", "test_accuracy")


class TensorBoardTracker:
    """Optuna callback writing each finished trial to ``logdir/trial-NNNNN`` (module docstring)."""

    def __init__(self, logdir: str | Path) -> None:
        self.logdir = Path(logdir)
        try:
            from tensorboardX import SummaryWriter  # noqa: F401
        except ImportError as exc:
            raise ValueError(
                "--track tensorboard needs tensorboardX; install it with "
                "pip install 'snt-search[tensorboard]'"
            ) from exc

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        from optuna.trial import TrialState

        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
            return
        if trial.state == TrialState.FAIL and "fail_reason" not in trial.user_attrs:
            return  # re-queued or surplus: not a finished trial
        from tensorboardX import SummaryWriter

        attrs = trial.user_attrs
        with SummaryWriter(str(self.logdir / f"trial-{trial.number:05d}")) as writer:
            for epoch in attrs.get("curve", []):
                for key in CURVE_KEYS:
                    if _number(epoch.get(key)):
                        writer.add_scalar(f"epoch/{key}", epoch[key], int(epoch["epoch"]))
            for key, value in sorted(attrs.items()):
                if _number(value):
                    writer.add_scalar(f"metric/{key}", value, 0)
            reason = attrs.get("fail_reason") or attrs.get("pruned_reason") or ""
            writer.add_text("state", f"{trial.state.name} {reason}".strip(), 0)
            if trial.state == TrialState.COMPLETE and trial.values is not None:
                names = attrs_objectives(study, len(trial.values))
                writer.add_hparams(
                    {k: _hparam(v) for k, v in trial.params.items()},
                    {f"hparam/{n}": v for n, v in zip(names, trial.values, strict=True)},
                    name="hparams",  # its own run: trial-NNNNN/hparams
                )


def attrs_objectives(study: optuna.Study, n: int) -> list[str]:
    names = study.user_attrs.get("objectives")
    return (
        [str(x) for x in names]
        if isinstance(names, list) and len(names) == n
        else [f"objective_{i}" for i in range(n)]
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _hparam(value: Any) -> bool | str | float | int:
    return value if isinstance(value, bool | str | float | int) else str(value)


TRACKERS = ("tensorboard",)


def make_tracker(name: str, logdir: Path) -> TensorBoardTracker:
    """The tracker ``--track name`` asks for, writing under ``logdir``."""
    if name != "tensorboard":
        raise ValueError(f"--track {name!r}: trackers are {', '.join(TRACKERS)}")
    return TensorBoardTracker(logdir)
