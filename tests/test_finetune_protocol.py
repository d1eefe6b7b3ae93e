"""[finetune]: one fine-tune optimizer and schedule for every arm, and a budget's QAT/PTQ
epochs (issue: a protocol that isolates flatness)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import TINY_SPACE

from snt_search import stages
from snt_search.config import LEGACY_FINETUNE, FinetuneConfig, TrainConfig
from snt_search.pipeline import build_model, compress_copy, load_data
from snt_search.registry import get_registry
from snt_search.space import SpaceError, load_space
from snt_search.trial_spec import TrialSpec, sample

PTQ_SPACE = TINY_SPACE.replace('compressor = "magnitude_prune"', 'compressor = "ptq"').replace(
    '"compressor.magnitude_prune.sparsity" = 0.5', '"compressor.ptq.finetune_epochs" = 1'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_default_is_one_adam_protocol_for_every_arm() -> None:
    ft = FinetuneConfig()
    assert (ft.optimizer, ft.lr_scale, ft.warmup_epochs, ft.schedule) == (
        "adam",
        0.1,
        0.1,
        "cosine",
    )


def test_the_section_is_read_and_checked(tmp_path: Path) -> None:
    text = PTQ_SPACE + '\n[finetune]\noptimizer = "sgd"\nlr_scale = 0.5\nwarmup_epochs = 0.0\n'
    space = load_space(write(tmp_path, text)).check(get_registry())
    assert space.finetune == FinetuneConfig(optimizer="sgd", lr_scale=0.5, warmup_epochs=0.0)
    fixed = {"transform": "none", "optimizer": "sam", "train.lr": 0.01, "optimizer.sam.rho": 0.05}
    spec = sample(space, optuna.trial.FixedTrial(fixed), space.budget("smoke"))
    assert spec.finetune.optimizer == "sgd"
    assert TrialSpec.from_dict(spec.as_dict()).finetune == spec.finetune


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("lr = 0.1", r"\[finetune\] unknown key 'lr'; allowed: optimizer, lr_scale"),
        ('schedule = "linear"', r"\[finetune\] finetune.schedule must be one of"),
        ("lr_scale = 0.0", r"\[finetune\] finetune.lr_scale must be > 0"),
        ('optimizer = "lion"', r"\[finetune\] optimizer = 'lion' is not an installed optimizer"),
    ],
)
def test_a_bad_section_names_the_key_and_the_fix(
    tmp_path: Path, section: str, message: str
) -> None:
    path = write(tmp_path, PTQ_SPACE + f"\n[finetune]\n{section}\n")
    with pytest.raises(SpaceError, match=message):
        load_space(path).check(get_registry())


def test_a_budget_sets_the_compressors_finetune_epochs(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, PTQ_SPACE + "finetune_epochs = 3\n")).check(get_registry())
    fixed = {"transform": "none", "optimizer": "adam", "train.lr": 0.01}
    spec = sample(space, optuna.trial.FixedTrial(fixed), space.budget("smoke"))
    assert spec.params["compressor"]["finetune_epochs"] == 3  # the budget wins over [params]
    pruning = write(tmp_path, TINY_SPACE + "finetune_epochs = 3\n")
    with pytest.raises(SpaceError, match=r"compressor 'magnitude_prune' has no such parameter"):
        load_space(pruning).check(get_registry())


def test_a_config_stored_before_the_section_re_runs_the_legacy_way() -> None:
    old = {"plugins": {"dataset": "synthetic"}, "train": {"lr": 0.01}}
    assert TrialSpec.from_dict(old).finetune == LEGACY_FINETUNE
    assert LEGACY_FINETUNE.optimizer == "trial" and LEGACY_FINETUNE.warmup_epochs == 0.0


def _spec(finetune: FinetuneConfig) -> TrialSpec:
    return TrialSpec(
        plugins={
            "dataset": "synthetic",
            "backbone": "mixer_s",
            "transform": "none",
            "optimizer": "sam",
            "compressor": "ptq",
        },
        params={
            "dataset": {"train_size": 64, "test_size": 32},
            "backbone": {"num_blocks": 1, "embed_dim": 16, "patch_size": 8},
            "optimizer": {"rho": 0.07},
            "compressor": {"finetune_epochs": 1},
        },
        train=TrainConfig(epochs=1, batch_size=32, lr=0.02, warmup_epochs=0.0),
        finetune=finetune,
    )


@pytest.mark.parametrize(
    ("finetune", "optimizer", "params", "lr", "warmup"),
    [
        (FinetuneConfig(), "adam", {}, 0.002, 0.1),
        (
            FinetuneConfig(optimizer="trial", lr_scale=1.0, warmup_epochs=0.0),
            "sam",
            {"rho": 0.07},
            0.02,
            0.0,
        ),
    ],
)
def test_the_compressor_fine_tunes_as_the_section_says(
    monkeypatch: pytest.MonkeyPatch,
    finetune: FinetuneConfig,
    optimizer: str,
    params: dict[str, Any],
    lr: float,
    warmup: float,
) -> None:
    calls: list[tuple[str, dict[str, Any], TrainConfig]] = []

    def spy(
        model: Any, opt: Any, opt_params: dict[str, Any], data: Any, cfg: TrainConfig, **kw: Any
    ) -> None:
        calls.append((opt.name, opt_params, cfg))

    spec = _spec(finetune)
    data = load_data(spec)
    model, _ = build_model(spec, data)
    monkeypatch.setattr(stages, "train", spy)
    compress_copy(spec, model, data)
    assert len(calls) == 1
    name, got_params, cfg = calls[0]
    assert (name, got_params) == (optimizer, params)
    assert cfg.lr == pytest.approx(lr) and cfg.warmup_epochs == warmup and cfg.epochs == 1
    assert cfg.schedule == "cosine"
