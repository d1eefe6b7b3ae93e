"""``train.weight_decay_scope``: which parameters weight decay reaches (issue: a protocol that
isolates flatness; L2 on Eq. 1's slope beta pulls PReLU toward ReLU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snt_search.config import TrainConfig
from snt_search.layers import LBiasPReLU
from snt_search.registry import get_registry
from snt_search.specs import DataBundle, DataRequest
from snt_search.training import decay_groups, train


def snt_resnet() -> nn.Module:
    registry = get_registry()
    torch.manual_seed(0)
    model = registry.get("backbone", "resnet20").build(num_classes=4, image_size=32, in_chans=3)
    registry.get("transform", "snt").apply(model)
    return model


def _decay_of(groups: list[dict], model: nn.Module) -> dict[str, float]:
    by_id = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    return {name: by_id[id(p)] for name, p in model.named_parameters()}


def test_weights_scope_decays_conv_and_linear_weights_only() -> None:
    model = snt_resnet()
    decay = _decay_of(decay_groups(model, 5e-4, "weights"), model)
    assert len(decay) == len(list(model.parameters()))  # every trainable parameter, once
    eq1 = [n for n, m in model.named_modules() if isinstance(m, LBiasPReLU)]
    assert eq1, "the snt transform puts Eq. 1 layers in"
    for name, value in decay.items():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        if isinstance(module, (nn.Conv2d, nn.Linear)) and name.endswith("weight"):
            assert value == 5e-4, name
        else:  # biases, BatchNorm, Eq. 1's gamma/beta/zeta
            assert value == 0.0, name
    assert any(n.endswith(".beta") and v == 0.0 for n, v in decay.items())


def test_all_scope_decays_every_parameter() -> None:
    model = snt_resnet()
    decay = _decay_of(decay_groups(model, 5e-4, "all"), model)
    assert set(decay.values()) == {5e-4}


def test_frozen_parameters_are_left_out() -> None:
    model = snt_resnet()
    frozen = next(model.parameters())
    frozen.requires_grad_(False)
    ids = {id(p) for g in decay_groups(model, 1e-3, "weights") for p in g["params"]}
    assert id(frozen) not in ids


def test_timm_no_weight_decay_names_are_not_decayed() -> None:
    model = (
        get_registry().get("backbone", "vit_tiny").build(num_classes=4, image_size=32, in_chans=3)
    )
    decay = _decay_of(decay_groups(model, 0.05, "weights"), model)
    assert decay["pos_embed"] == 0.0 and decay["cls_token"] == 0.0


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "sam", "asam", "gsam"])
def test_every_builtin_optimizer_keeps_the_groups_decay(name: str) -> None:
    model = snt_resnet()
    opt = (
        get_registry()
        .get("optimizer", name)
        .build(decay_groups(model, 5e-4, "weights"), lr=1e-3, weight_decay=5e-4)
    )
    assert sorted({g["weight_decay"] for g in opt.param_groups}) == [0.0, 5e-4]
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_training_leaves_eq1_slopes_undecayed() -> None:
    """SGD with huge decay: Eq. 1's beta keeps its value under "weights", shrinks under "all"."""
    data = (
        get_registry().get("dataset", "synthetic").load(DataRequest(), train_size=32, test_size=16)
    )
    assert isinstance(data, DataBundle)
    sgd = get_registry().get("optimizer", "sgd")
    moved = {}
    for scope in ("weights", "all"):
        model = snt_resnet()
        beta = next(m for m in model.modules() if isinstance(m, LBiasPReLU)).beta
        before = beta.detach().clone()
        cfg = TrainConfig(
            epochs=1,
            batch_size=16,
            lr=1e-6,
            weight_decay=1e4,
            augment=False,
            weight_decay_scope=scope,
        )
        train(model, sgd, {"momentum": 0.0}, data, cfg, seed=0)
        moved[scope] = float((beta.detach() - before).abs().max())
    assert moved["weights"] < 1e-4 < 1e-3 < moved["all"], moved


def test_unknown_scope_is_an_error_naming_the_key() -> None:
    with pytest.raises(ValueError, match="weight_decay_scope"):
        TrainConfig(weight_decay_scope="biases")
