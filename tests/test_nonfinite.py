"""A model with non-finite outputs, or a non-finite metric, is a failed trial, never a result.

Test plugins break a trial on purpose: ``nanny`` (a compressor whose compressed model outputs
NaN), ``nan_out`` (a transform whose model outputs NaN) and ``nan_eval`` (the same in eval
mode only, so the training loss stays finite). Each such trial must be FAIL with a reason
naming the stage and the plugin, under both drivers, and never reach the Pareto front.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import optuna
import pytest
import torch
from torch import nn

from snt_search import pipeline
from snt_search.config import SweepConfig
from snt_search.data import TensorLoader
from snt_search.driver import StudyOptions, open_study, run_study
from snt_search.pareto import front_rows
from snt_search.pipeline import TrialFailed, run_trial
from snt_search.registry import get_registry
from snt_search.space import Space, load_space
from snt_search.specs import (
    CompressionContext,
    CompressionReport,
    Compressor,
    Param,
    Transform,
    TransformReport,
)
from snt_search.training import evaluate
from snt_search.trial_spec import TrialSpec, sample

SPACE = """
[study]
name = "nonfinite"
sampler = "random"
seed = 0

[objectives]
lambda_max = "minimize"
accuracy_drop = "minimize"

[plugins]
dataset = "synthetic"
backbone = "mixer_s"
transform = ["none", "nan_out", "nan_eval"]
optimizer = "adam"
compressor = ["magnitude_prune", "nanny"]

[params]
"dataset.synthetic.train_size" = 96
"dataset.synthetic.test_size" = 64
"backbone.mixer_s.num_blocks" = 1
"backbone.mixer_s.embed_dim" = 16
"backbone.mixer_s.patch_size" = 8
"train.lr" = 0.003
"compressor.magnitude_prune.sparsity" = 0.5

[sharpness]
method = "lanczos"
samples = 32
batch_size = 32
max_iter = 30

[budgets.smoke]
epochs = 1
batch_size = 32
"""


class Nanny(Compressor):
    """Test compressor: the compressed model outputs NaN (as a broken quantizer's might).

    With ``sparsity`` it also serves as a sweep's pruner: NaN from 0.5 on, fine below.
    """

    defaults: ClassVar[dict[str, Param]] = {"sparsity": 0.5}

    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        sparsity = float(self.resolve_params(params)["sparsity"])
        if sparsity >= 0.5:
            head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
            with torch.no_grad():
                head.bias.fill_(math.nan)
        return CompressionReport(self.name, {"sparsity": sparsity})


class NanOut(Transform):
    """Test transform: the model's outputs are NaN (in eval mode only with ``eval_only``)."""

    defaults: ClassVar[dict[str, Param]] = {"eval_only": False}

    def apply(self, model: nn.Module, **params: Any) -> TransformReport:
        eval_only = bool(self.resolve_params(params)["eval_only"])

        def to_nan(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor | None:
            return None if eval_only and module.training else out * math.nan

        model.register_forward_hook(to_nan)
        return TransformReport(self.name)


class NanEval(NanOut):
    """Test transform: the model's outputs are NaN in eval mode only."""

    defaults: ClassVar[dict[str, Param]] = {"eval_only": True}


@pytest.fixture
def space(workdir: Path) -> Space:
    registry = get_registry()  # the process-wide one: run_trial's default, as on Ray
    registry.register("compressor", "nanny", Nanny)
    registry.register("transform", "nan_out", NanOut)
    registry.register("transform", "nan_eval", NanEval)
    path = workdir / "nonfinite.toml"
    path.write_text(SPACE)
    return load_space(path)


def spec_of(space: Space, transform: str, compressor: str) -> TrialSpec:
    choice = optuna.trial.FixedTrial({"transform": transform, "compressor": compressor})
    return sample(space, choice, space.budget("smoke"))


def test_non_finite_models_fail_their_trials_and_never_reach_the_front(
    space: Space, workdir: Path
) -> None:
    options = StudyOptions(n_trials=4, show_progress=False)
    study = open_study(space, options)
    for transform, compressor in [
        ("none", "magnitude_prune"),  # the one trustworthy trial
        ("none", "nanny"),
        ("nan_out", "magnitude_prune"),
        ("nan_eval", "magnitude_prune"),
    ]:
        study.enqueue_trial({"transform": transform, "compressor": compressor})
    outcome = run_study(space, options)
    assert (outcome.finished, outcome.failed, outcome.problems) == (1, 3, [])

    study = optuna.load_study(study_name="nonfinite", storage="sqlite:///snt-search.db")
    good, nanny, nan_out, nan_eval = study.trials
    assert good.state == optuna.trial.TrialState.COMPLETE
    assert all(math.isfinite(v) for v in good.values)
    reasons = {}
    for t in (nanny, nan_out, nan_eval):
        assert t.state == optuna.trial.TrialState.FAIL and t.values is None
        reasons[t.params["transform"], t.params["compressor"]] = t.user_attrs["fail_reason"]
    assert reasons["none", "nanny"].startswith(
        "TrialFailed: compressed model gives non-finite outputs: compressor 'nanny' "
        "(stage: compress)"
    )
    # NaN in training mode: the loss diverges at the first step.
    assert reasons["nan_out", "magnitude_prune"].startswith(
        "TrialFailed: diverged: backbone 'mixer_s', transform 'nan_out', optimizer 'adam' "
        "(stage: training): training loss became nan at epoch 1, step 1"
    )
    # NaN in eval mode only: the loss is finite, the first evaluation is not.
    assert reasons["nan_eval", "magnitude_prune"].startswith(
        "TrialFailed: diverged: backbone 'mixer_s', transform 'nan_eval', optimizer 'adam' "
        "(stage: training): the model gives non-finite outputs on the test set"
    )

    assert [t.number for t in study.best_trials] == [good.number]
    assert [r["trial"] for r in front_rows(study)] == [good.number]
    assert study.user_attrs["pareto_front"] == [good.number]
    stored = json.loads((workdir / "runs/nonfinite/pareto.json").read_text())
    assert [r["trial"] for r in stored] == [good.number]


def test_the_ray_trainable_reports_the_same_expected_failure(space: Space, workdir: Path) -> None:
    pytest.importorskip("ray")
    from snt_search.ray.trainable import _outcome

    curve: list[dict[str, Any]] = []
    outcome = _outcome(
        {"objectives": ["lambda_max", "accuracy_drop"]},
        spec_of(space, "none", "nanny"),
        workdir / "trial.safetensors",
        lambda stats: None,
        curve,
    )
    assert outcome["unexpected"] is False and "metrics" not in outcome
    assert outcome["fail_reason"].startswith(
        "TrialFailed: compressed model gives non-finite outputs: compressor 'nanny' "
        "(stage: compress)"
    )


def test_a_non_finite_metric_fails_naming_the_metric_stage_and_plugins(
    space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_train = pipeline.train

    def broken_clock(*args: Any, **kwargs: Any) -> Any:
        result = real_train(*args, **kwargs)
        result.seconds = math.nan
        return result

    monkeypatch.setattr(pipeline, "train", broken_clock)
    with pytest.raises(
        TrialFailed,
        match=r"^metric train_time_s is nan, not a finite number: backbone 'mixer_s', "
        r"transform 'none', optimizer 'adam' \(stage: training\)",
    ):
        run_trial(spec_of(space, "none", "magnitude_prune"))


def test_a_non_finite_sweep_point_fails_naming_the_sparsity_and_pruner(space: Space) -> None:
    spec = spec_of(space, "none", "magnitude_prune")
    spec = replace(spec, sweep=SweepConfig(compressor="nanny", sparsities=(0.0, 0.9)))
    with pytest.raises(
        TrialFailed,
        match=r"^model pruned to 0.9 gives non-finite outputs: compressor 'nanny' "
        r"\(stage: sweep\)",
    ):
        run_trial(spec)


def test_evaluate_gives_nan_for_non_finite_logits() -> None:
    x, y = torch.zeros(8, 3, 4, 4, dtype=torch.uint8), torch.zeros(8, dtype=torch.long)
    loader = TensorLoader(x, y, mean=(0.0,) * 3, std=(1.0,) * 3, batch_size=4)

    class Logits(nn.Module):
        def __init__(self, bad: float | None) -> None:
            super().__init__()
            self.bad, self.calls = bad, 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            out = torch.zeros(len(x), 3)
            out[:, 0] = 1.0  # class 0 for every image: 100% when finite
            if self.bad is not None and self.calls == 2:
                out[1, 2] = self.bad  # one logit of one image of the second batch
            return out

    assert evaluate(Logits(None), loader) == 100.0
    for bad in (math.nan, math.inf, -math.inf):
        model = Logits(bad).train()
        assert math.isnan(evaluate(model, loader)), bad
        assert model.training  # mode restored
