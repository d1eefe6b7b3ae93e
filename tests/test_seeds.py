"""[study] seeds: each trial's configuration runs over N seeds and is scored by the means."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from conftest import TINY_SPACE

from snt_search.config import TrainConfig
from snt_search.driver import StudyOptions, run_study
from snt_search.pareto import front_rows
from snt_search.pipeline import TrialResult, run_trial
from snt_search.repeats import combine, seed_checkpoint
from snt_search.space import SpaceError, load_space
from snt_search.trial_spec import TrialSpec, sample

SPEC = TrialSpec(
    plugins={
        "dataset": "synthetic",
        "backbone": "mixer_s",
        "transform": "snt",
        "optimizer": "adam",
        "compressor": "magnitude_prune",
    },
    params={
        "dataset": {"train_size": 64, "test_size": 32},
        "backbone": {"num_blocks": 1, "embed_dim": 16, "patch_size": 8},
    },
    train=TrainConfig(epochs=1, batch_size=32, lr=0.01),
)


def _result(lam: float, reason: str = "") -> TrialResult:
    return TrialResult(
        metrics={"lambda_max": lam, "accuracy_drop": lam / 10},
        curve=[{"epoch": 1, "lam": lam}],
        reports={"sharpness": {"off_front_reason": reason}},
    )


def test_combine_takes_means_keeps_the_spread_and_the_first_seeds_model() -> None:
    out = combine([_result(10.0), _result(20.0), _result(30.0, "did not converge")], [5, 6, 7])
    assert out.metrics == {"lambda_max": 20.0, "accuracy_drop": 2.0}
    assert out.reports["seeds"]["seeds"] == [5, 6, 7]
    assert out.reports["seeds"]["std"]["lambda_max"] == pytest.approx(10.0)
    assert [m["lambda_max"] for m in out.reports["seeds"]["metrics"]] == [10.0, 20.0, 30.0]
    assert out.curve == [{"epoch": 1, "lam": 10.0}]  # the first seed's run
    assert out.reports["sharpness"]["off_front_reason"] == "seed 7: did not converge"


def test_a_repeated_trial_is_the_mean_of_its_seeds_run_alone(tmp_path: Path) -> None:
    alone = [run_trial(replace(SPEC, seed=s)) for s in (3, 4)]
    checkpoint = tmp_path / "trial.safetensors"
    both = run_trial(replace(SPEC, seed=3, seeds=2), checkpoint=checkpoint)
    for name in ("lambda_max", "base_accuracy", "accuracy_drop"):
        assert both.metrics[name] == pytest.approx(
            (alone[0].metrics[name] + alone[1].metrics[name]) / 2
        )
    assert both.reports["seeds"]["seeds"] == [3, 4]
    timeless = [{k: v for k, v in e.items() if k != "seconds"} for e in both.curve]
    assert timeless == [{k: v for k, v in e.items() if k != "seconds"} for e in alone[0].curve]
    assert not seed_checkpoint(checkpoint, 1).exists()  # type: ignore[union-attr]


def test_the_setting_is_read_checked_sampled_and_stored(tmp_path: Path) -> None:
    path = tmp_path / "space.toml"
    path.write_text(TINY_SPACE.replace("seed = 0", "seed = 0\nseeds = 3"))
    space = load_space(path)
    assert space.seeds == 3
    fixed = {"transform": "none", "optimizer": "adam", "train.lr": 0.01}
    spec = sample(space, optuna.trial.FixedTrial(fixed), space.budget("smoke"))
    assert spec.seeds == 3 and TrialSpec.from_dict(spec.as_dict()).seeds == 3
    path.write_text(TINY_SPACE)
    assert load_space(path).fingerprint != space.fingerprint  # a resume must not mix them
    path.write_text(TINY_SPACE.replace("seed = 0", "seed = 0\nseeds = 0"))
    with pytest.raises(SpaceError, match=r"\[study\] seeds must be an integer >= 1"):
        load_space(path)


def test_a_study_with_seeds_stores_each_seeds_metrics(tiny_space: Path, workdir: Path) -> None:
    text = tiny_space.read_text().replace("seed = 0", "seed = 0\nseeds = 2")
    tiny_space.write_text(text)
    outcome = run_study(load_space(tiny_space), StudyOptions(n_trials=1, show_progress=False))
    study = optuna.load_study(study_name=outcome.study_name, storage=outcome.storage)
    trial = study.trials[0]
    report = trial.user_attrs["seeds_report"]
    assert report["seeds"] == [0, 1] and len(report["metrics"]) == 2
    lam = [m["lambda_max"] for m in report["metrics"]]
    assert trial.values[0] == pytest.approx(sum(lam) / 2)
    rows = front_rows(study)
    assert len(rows) == 1, trial.user_attrs.get("off_front_reason")
    assert rows[0]["lambda_max_std"] == pytest.approx(abs(lam[0] - lam[1]) / 2**0.5)
