"""A realistic stored study, built without training: what `snt-search study` would leave.

Four groups in the shape of the paper's Table 3 (ADAM sharp and fragile, SAM flat and robust
but half as fast, ARCH in between at ADAM's speed), three sparsities each, plus a diverged
trial, a trial killed without a reason, a finished trial whose lambda_max is infinite, one
whose accuracy drop is NaN, and a trial still running.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from snt_search.config import Budget, SharpnessConfig, TrainConfig
from snt_search.trial_spec import TrialSpec

STUDY = "mixer_prune"
# group -> (lambda_max at sparsity 0.5, accuracy drop at 0.5, images/s)
GROUPS = {
    ("none", "adam"): (176.0, 9.0, 1000.0),
    ("none", "sam"): (2.4, 5.0, 520.0),
    ("snt", "adam"): (26.8, 6.0, 960.0),
    ("snt", "sam"): (3.1, 4.5, 500.0),
}
SPARSITIES = (0.3, 0.5, 0.7)
DISTS = {
    "transform": CategoricalDistribution(["none", "snt"]),
    "optimizer": CategoricalDistribution(["adam", "sam"]),
    "train.lr": FloatDistribution(3e-4, 3e-3, log=True),
}

MakeStudy = Callable[..., str]


def config(
    transform: str, optimizer: str, *, lr: float = 1e-3, sparsity: float = 0.5
) -> dict[str, Any]:
    """The ``config`` attr the driver stores: a real TrialSpec, with non-default values."""
    params: dict[str, dict[str, Any]] = {
        "backbone": {"num_blocks": 2, "embed_dim": 32, "patch_size": 4},
        "compressor": {"sparsity": sparsity},
    }
    if optimizer == "sam":
        params["optimizer"] = {"rho": 0.05}
    spec = TrialSpec(
        plugins={
            "dataset": "digits",
            "backbone": "mixer_s",
            "transform": transform,
            "optimizer": optimizer,
            "compressor": "magnitude_prune",
        },
        params=params,
        train=TrainConfig(epochs=3, batch_size=64, lr=lr, weight_decay=5e-5, warmup_epochs=0.5),
        sharpness=SharpnessConfig(samples=64, max_iter=15),
        budget=Budget(name="smoke", epochs=3, batch_size=64, train_subset=1024, test_subset=512),
        seed=0,
    )
    return spec.as_dict()


def finished_attrs(transform: str, optimizer: str, i: int, sparsity: float) -> dict[str, Any]:
    lam, drop, speed = GROUPS[(transform, optimizer)]
    lam *= 1.0 + 0.15 * (i - 1)
    drop *= (sparsity / 0.5) ** 2 * (1.0 + 0.1 * (i - 1))
    base = 90.0 + (1.0 if transform == "snt" else 0.0) + 0.3 * i
    return {
        "config": config(transform, optimizer, lr=1e-3 * (1 + i), sparsity=sparsity),
        "base_accuracy": base,
        "compressed_accuracy": base - drop,
        "accuracy_drop": drop,
        "lambda_max": lam,
        "train_time_s": 30_000.0 / speed,
        "images_per_s": speed * (1.0 + 0.02 * i),
        "sharpness_time_s": 4.0,
        "n_params": 55_000.0,
        "curve": [
            {
                "epoch": e,
                "loss": 1.0 / e,
                "train_accuracy": base - 9 + 3 * e,
                "test_accuracy": base - 6 + 2 * e,
                "seconds": 10.0,
            }
            for e in (1, 2, 3)
        ],
        "transform_report": {"replaced": 8} if transform == "snt" else {},
        "sharpness_report": {"method": "lanczos", "converged": i != 2, "iterations": 15},
        "compression_report": {
            "compressor": "magnitude_prune",
            "sparsity": sparsity + 0.001,
            "target_sparsity": sparsity,
        },
    }


def add(
    study: optuna.Study, state: TrialState, attrs: dict[str, Any], values: list[float] | None = None
) -> None:
    plugins = (attrs.get("config") or {}).get("plugins", {})
    params: dict[str, Any] = {k: plugins[k] for k in ("transform", "optimizer") if k in plugins}
    if "config" in attrs:
        params["train.lr"] = attrs["config"]["train"]["lr"]
    study.add_trial(
        create_trial(
            state=state,
            values=values,
            params=params,
            distributions={k: DISTS[k] for k in params},
            user_attrs=attrs,
        )
    )


def new_study(storage: str, name: str = STUDY) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage, study_name=name, directions=["minimize", "minimize"]
    )
    study.set_user_attr("space", "mixer_prune")
    study.set_user_attr("objectives", ["lambda_max", "accuracy_drop"])
    study.set_user_attr("budget", "smoke")
    return study


def fill(study: optuna.Study) -> None:
    """The realistic trials described in the module docstring."""
    for i, sparsity in enumerate(SPARSITIES):
        for transform, optimizer in GROUPS:
            attrs = finished_attrs(transform, optimizer, i, sparsity)
            add(study, TrialState.COMPLETE, attrs, [attrs["lambda_max"], attrs["accuracy_drop"]])
    diverged = {
        "config": config("none", "adam", lr=3e-3),
        "fail_reason": "TrialFailed: diverged: loss is nan at epoch 1, step 7",
    }
    add(study, TrialState.FAIL, diverged)
    add(study, TrialState.FAIL, {"config": config("snt", "sam")})  # killed: no reason
    inf = finished_attrs("snt", "adam", 0, 0.5) | {"lambda_max": math.inf}
    add(study, TrialState.COMPLETE, inf, [math.inf, inf["accuracy_drop"]])
    nan = finished_attrs("none", "sam", 0, 0.5) | {"accuracy_drop": math.nan}
    add(study, TrialState.COMPLETE, nan, [nan["lambda_max"], math.inf])
    add(study, TrialState.RUNNING, {"config": config("none", "adam")})


@pytest.fixture(scope="session")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Storage URL of a SQLite file holding the filled study ``mixer_prune`` (read-only use)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'study.db'}"
    fill(new_study(url))
    return url


@pytest.fixture
def make_study(tmp_path: Path) -> MakeStudy:
    """``make_study(filled=False)`` -> storage URL of a fresh SQLite file with that study."""

    def make(filled: bool = True, name: str = STUDY) -> str:
        url = f"sqlite:///{tmp_path / 'study.db'}"
        study = new_study(url, name)
        if filled:
            fill(study)
        return url

    return make
