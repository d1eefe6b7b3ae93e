"""Trained and compressed models saved as safetensors and rebuilt from their config alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from safetensors import safe_open
from torch import nn

from snt_search import load_model
from snt_search.compression.tokens import _CompressedBlock
from snt_search.config import Budget, SharpnessConfig, TrainConfig
from snt_search.data import TensorLoader
from snt_search.export import (
    ModelConfig,
    ModelFileError,
    decode_state,
    encode_state,
    read_config,
    save_model,
)
from snt_search.export.codes import CODES
from snt_search.pipeline import TrialResult, load_data, run_trial
from snt_search.registry import get_registry
from snt_search.specs import CompressionContext, CompressionReport, Compressor
from snt_search.specs.compressor import RestoreUnsupported
from snt_search.training import evaluate
from snt_search.trial_spec import TrialSpec

MIXER = {"num_blocks": 1, "embed_dim": 16, "patch_size": 8}
VIT = {"depth": 1, "embed_dim": 16, "num_heads": 2, "patch_size": 4}

# name -> (backbone, its params, transform, compressor, its params)
CASES: dict[str, tuple[str, dict[str, Any], str, str, dict[str, Any]]] = {
    "pruned": ("mixer_s", MIXER, "none", "magnitude_prune", {"sparsity": 0.5}),
    "ptq": (
        "mixer_s",
        MIXER,
        "none",
        "ptq",
        {"weight_bits": 4, "activation_bits": 8, "finetune_epochs": 0},
    ),
    "qat": ("mixer_s", MIXER, "none", "qat", {"finetune_epochs": 1}),
    "snt": ("mixer_s", MIXER, "snt", "qat", {"finetune_epochs": 1}),
    "token_prune": (
        "vit_tiny",
        VIT,
        "none",
        "token_prune",
        {"keep_rate": 0.5, "blocks": "0", "timing_runs": 1},
    ),
}


def make_spec(case: str) -> TrialSpec:
    backbone, bparams, transform, compressor, cparams = CASES[case]
    return TrialSpec(
        plugins={
            "dataset": "synthetic",
            "backbone": backbone,
            "transform": transform,
            "optimizer": "adam",
            "compressor": compressor,
        },
        params={
            "dataset": {"train_size": 64, "test_size": 64, "image_size": 16},
            "backbone": bparams,
            "compressor": cparams,
        },
        train=TrainConfig(epochs=1, batch_size=32, precision="fp32"),
        sharpness=SharpnessConfig(samples=16, batch_size=16, max_iter=3),
        budget=Budget(epochs=1),
    )


_RESULTS: dict[str, TrialResult] = {}


def trial(case: str) -> tuple[TrialSpec, TrialResult]:
    """Run the case's tiny trial once per test session."""
    spec = make_spec(case)
    if case not in _RESULTS:
        _RESULTS[case] = run_trial(spec)
    return spec, _RESULTS[case]


def config_of(spec: TrialSpec, result: TrialResult, which: str) -> ModelConfig:
    return ModelConfig(
        which=which, plugins=dict(spec.plugins), params=spec.params, dataset=result.dataset
    )


def test_load_model_is_lazy_and_importable_from_the_package_root() -> None:
    import snt_search

    assert snt_search.load_model is load_model
    assert "load_model" in snt_search.__all__


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("which", ["trained", "compressed"])
def test_saved_model_reloads_with_identical_logits_and_accuracy(
    case: str, which: str, tmp_path: Path
) -> None:
    spec, result = trial(case)
    model = result.models[which].eval()
    path = save_model(model, config_of(spec, result, which), tmp_path / "m.safetensors")
    loaded = load_model(path)
    assert loaded is not model and not loaded.training
    loader = TensorLoader.from_bundle(load_data(spec), "test", batch_size=64)
    with torch.no_grad():
        for x, _ in loader:
            assert torch.equal(loaded(x), model(x))
    recorded = result.metrics["base_accuracy" if which == "trained" else "compressed_accuracy"]
    assert abs(evaluate(loaded, loader) - recorded) < 0.1
    assert read_config(path).which == which


def test_compressed_structure_is_rebuilt_not_just_the_weights(tmp_path: Path) -> None:
    spec, result = trial("token_prune")
    path = save_model(
        result.models["compressed"],
        config_of(spec, result, "compressed"),
        tmp_path / "m.safetensors",
    )
    blocks = list(load_model(path).blocks)  # type: ignore[arg-type]
    assert blocks and all(isinstance(b, _CompressedBlock) for b in blocks)
    spec, result = trial("qat")
    path = save_model(
        result.models["compressed"], config_of(spec, result, "compressed"), tmp_path / "q.st"
    )
    quantizers = [k for k in load_model(path).state_dict() if ".input_quant." in k]
    assert quantizers


def test_quantized_weights_are_stored_as_int8_codes_and_the_file_is_smaller(
    tmp_path: Path,
) -> None:
    spec, result = trial("ptq")
    trained = save_model(
        result.models["trained"], config_of(spec, result, "trained"), tmp_path / "t.st"
    )
    compressed = save_model(
        result.models["compressed"], config_of(spec, result, "compressed"), tmp_path / "c.st"
    )
    with safe_open(str(compressed), framework="pt") as fh:
        codes = [k for k in fh.keys() if k.endswith(CODES)]
        assert codes and all(fh.get_tensor(k).dtype == torch.int8 for k in codes)
    with safe_open(str(trained), framework="pt") as fh:
        assert not [k for k in fh.keys() if k.endswith(CODES)]
    assert compressed.stat().st_size < 0.7 * trained.stat().st_size


def test_integer_codes_are_lossless_and_refuse_off_grid_tensors() -> None:
    from snt_search.compression.quant import fake_quant_weight

    torch.manual_seed(0)
    w = torch.randn(32, 8, 3, 3)
    state = {
        "w4": fake_quant_weight(w, 4).detach(),
        "w8_tensor": fake_quant_weight(w, 8, "tensor").detach(),
        "float": w,
        "almost": fake_quant_weight(w, 4).detach() * (1 + 1e-6),
    }
    stored, encoded = encode_state(state)
    assert encoded == 2 and "float" in stored and "almost" in stored
    decoded = decode_state(stored)
    assert decoded.keys() == state.keys()
    assert all(torch.equal(decoded[k], v) for k, v in state.items())


def _saved(tmp_path: Path, case: str = "pruned") -> Path:
    spec, result = trial(case)
    return save_model(
        result.models["compressed"],
        config_of(spec, result, "compressed"),
        tmp_path / "m.safetensors",
    )


def test_a_damaged_file_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match=r"m\.safetensors.*damaged.*Fix") as info:
        load_model(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nowhere.safetensors")


def test_a_config_from_a_newer_snt_search_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    _saved(folder).rename(folder / "model.safetensors")
    data = json.loads(read_config(folder / "model.safetensors").to_json())
    data["format"], data["snt_search_version"] = 99, "9.0"
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=r"format 99.*snt-search 9\.0.*pip install -U"):
        load_model(folder)


def test_weights_that_do_not_fit_the_rebuilt_model_are_refused(tmp_path: Path) -> None:
    spec, result = trial("pruned")
    config = config_of(spec, result, "trained")
    wider = {**config.params, "backbone": {**MIXER, "embed_dim": 32}}
    path = tmp_path / "w.safetensors"
    save_model(
        result.models["trained"],
        ModelConfig("trained", config.plugins, wider, {**config.dataset}),
        path,
    )
    with pytest.raises(ModelFileError, match="do not fit.*size mismatch"):
        load_model(path)
    spec, result = trial("ptq")
    config = config_of(spec, result, "compressed")
    wrong = ModelConfig(
        which="compressed",
        plugins=config.plugins,
        params={**config.params, "compressor": {"activation_bits": 0}},  # no quantizers
        dataset=config.dataset,
    )
    path = save_model(result.models["compressed"], wrong, tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError, match="do not fit.*unexpected.*input_quant"):
        load_model(path)


class _NoRestore(Compressor):
    """Scale every weight by 0.5 (a compressor without a restore hook)."""

    defaults: ClassVar[dict[str, Any]] = {}

    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.5)
        return CompressionReport(self.name)


def test_a_compressor_without_restore_hook_cannot_save_compressed_models(
    tmp_path: Path,
) -> None:
    get_registry().register("compressor", "halve", _NoRestore)
    assert not _NoRestore.can_restore()
    spec, result = trial("pruned")
    config = config_of(spec, result, "compressed")
    plugins = {**config.plugins, "compressor": "halve"}
    params = {"backbone": config.params["backbone"]}
    halved = ModelConfig("compressed", plugins, params, dataset=config.dataset)
    with pytest.raises(RestoreUnsupported, match=r"'halve' has no restore hook.*Fix"):
        save_model(result.models["compressed"], halved, tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())  # nothing half-written
    trained = ModelConfig("trained", plugins, params, dataset=config.dataset)
    assert load_model(save_model(result.models["trained"], trained, tmp_path / "t.st"))
