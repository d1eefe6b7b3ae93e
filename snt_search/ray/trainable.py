"""The function Ray Tune runs for each trial: one :func:`~snt_search.pipeline.run_trial` call.

Contract with the searcher (:mod:`snt_search.ray.searcher`), which is the only writer of the
Optuna study:

- the config is ``{"trial": <Optuna trial number>, "label": str, "spec": TrialSpec,
  "threads": int, "objectives": [metric, ...], "early_stop": EarlyStop | None,
  "front_accuracy": float | None, "models": {"store", "study", "keep"} | None}``;
- after each epoch the function reports the epoch's numbers with a checkpoint holding the
  per-epoch safetensors file :func:`run_trial` writes; a retry (the worker or its node died)
  starts from ``tune.get_checkpoint()`` and continues after the last finished epoch;
- every report carries ``attempt`` (a fresh token per start), ``ray_node_id``, ``ray_node_ip``
  and ``from_epoch``, so the searcher can record where each attempt ran;
- the last report holds the metrics as numbers and, under :data:`RESULT_KEY`, the JSON of the
  outcome, exactly what the local driver would store: ``{"metrics", "curve", "reports"}``
  and, when ``models`` names a store, ``"models"``: the trained and compressed models written
  there (:func:`~snt_search.export.artifacts.write_trial_models`; the searcher links them);
  ``{"pruned_reason", "curve"}`` when the space's ``[early_stop]`` rule stopped it; or
  ``{"fail_reason", "curve", "unexpected"}`` when it could not be scored (diverged, a plugin
  refused the model, a non-finite objective, or any other exception: ``unexpected``).
  Only the death of the process or node is left to Ray, which retries the trial
  (``FailureConfig(max_failures)``) and finally marks it ERROR.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from ..checkpoint import read_metadata
from ..early_stop import EarlyStop, EarlyStopped
from ..export.artifacts import write_trial_models
from ..pipeline import TrialFailed, run_trial
from ..specs import PluginError
from ..training import EpochStats
from ..trial_spec import TrialSpec

__all__ = ["CHECKPOINT_FILE", "RESULT_KEY", "train_on_ray"]

CHECKPOINT_FILE = "trial.safetensors"
RESULT_KEY = "snt_result"  # JSON of the trial's outcome, in the last report only


def train_on_ray(config: dict[str, Any]) -> None:
    """Run the trial ``config`` describes, reporting epochs and checkpoints to Ray Tune."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one INFO line per checkpoint
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    spec: TrialSpec = config["spec"]
    torch.set_num_threads(max(int(config.get("threads", 1)), 1))
    # Scratch space in the trial's working directory (Tune's, inside Ray's session folder), so
    # a trial killed with its node leaves nothing in the system's temp folder.
    work = Path(tempfile.mkdtemp(prefix=f"snt-trial-{config['trial']}-", dir=Path.cwd()))
    try:
        local = work / CHECKPOINT_FILE
        from_epoch, curve = _restore(local)
        base: dict[str, Any] = {
            "trial": config["trial"],
            "attempt": uuid.uuid4().hex[:12],
            "ray_node_id": ray.get_runtime_context().get_node_id(),
            "ray_node_ip": ray.util.get_node_ip_address(),
            "from_epoch": from_epoch,
        }
        rule: EarlyStop | None = config.get("early_stop")

        def on_epoch(stats: EpochStats) -> None:
            # run_trial saved the epoch's checkpoint just before calling this.
            curve.append(asdict(stats))
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                shutil.copy2(local, Path(tmp) / CHECKPOINT_FILE)
                tune.report(
                    {
                        **base,
                        "epoch": stats.epoch,
                        "loss": stats.loss,
                        "train_accuracy": stats.train_accuracy,
                        "test_accuracy": stats.test_accuracy,
                        "epoch_seconds": stats.seconds,
                    },
                    checkpoint=tune.Checkpoint.from_directory(tmp),
                )
            if rule is not None:
                rule.check(stats.epoch, stats.test_accuracy, config.get("front_accuracy"))

        outcome = _outcome(config, spec, local, on_epoch, curve)
        numbers = {k: float(v) for k, v in outcome.get("metrics", {}).items() if _is_number(v)}
        tune.report({**base, **numbers, RESULT_KEY: json.dumps(outcome, default=str)})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _outcome(
    config: dict[str, Any],
    spec: TrialSpec,
    local: Path,
    on_epoch: Callable[[EpochStats], None],
    curve: list[dict[str, Any]],
) -> dict[str, Any]:
    """Run the trial; what it measured, or why it has no result (see the module docstring)."""
    try:
        result = run_trial(spec, on_epoch=on_epoch, checkpoint=local)
        objectives = list(config.get("objectives", []))
        bad = [m for m in objectives if not math.isfinite(float(result.metrics[m]))]
        if bad:
            raise TrialFailed(f"objective {bad[0]} is {result.metrics[bad[0]]}: not a result")
    except EarlyStopped as exc:
        return {"pruned_reason": str(exc), "curve": curve}
    except (TrialFailed, PluginError) as exc:
        return {"fail_reason": f"{type(exc).__name__}: {exc}", "curve": curve, "unexpected": False}
    except Exception as exc:  # the local driver's rule: the trial's own error is its result
        return {"fail_reason": f"{type(exc).__name__}: {exc}", "curve": curve, "unexpected": True}
    outcome = {"metrics": result.metrics, "curve": result.curve, "reports": result.reports}
    models = config.get("models")
    if models:
        try:
            outcome["models"] = write_trial_models(
                models["store"], models["study"], config["trial"], spec, result
            )
        except Exception as exc:  # as the local driver: a store that cannot be written
            reason = (
                f"TrialFailed: could not store the trial's models in {models['store']}: "
                f"{type(exc).__name__}: {exc}. Fix: make the store writable and reachable "
                "from every worker (--artifacts), or run with --keep-models none"
            )
            return {"fail_reason": reason, "curve": curve, "unexpected": True}
    return outcome


def _restore(local: Path) -> tuple[int, list[dict[str, Any]]]:
    """Copy the trial's last Ray checkpoint to ``local``; return its epoch and curve so far."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0, []
    with checkpoint.as_directory() as folder:
        shutil.copy2(Path(folder) / CHECKPOINT_FILE, local)
    meta = read_metadata(local)
    return int(meta.get("epoch", 0)), list(meta.get("curve", []))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
