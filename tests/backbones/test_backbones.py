"""Every registered backbone builds, runs and has the documented size and parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snt_search.registry import get_registry
from snt_search.specs import Backbone, PluginError
from snt_search_builtins.backbones.timm_any import TimmBackbone

from .tiny import IMAGE_SIZE, NOT_APPLICABLE, NUM_CLASSES, TINY, tiny

REG = get_registry()
BACKBONES = REG.names("backbone")
BUILTINS = [r.name for r in REG if r.kind == "backbone" and r.ok and r.builtin]

# Paper sizes (10 classes, 32x32, 3 channels) with the defaults: Mixer-S as stated in the
# brief of Sec. 5.2.2, ResNet-20 0.27M (He et al. option A), the others as documented.
PARAMS = {
    "mixer_s": 1_132_170,
    "resnet20": 269_722,
    "resnet18": 11_173_962,
    "mobilenet_v1": 3_217_226,
    "vit_tiny": 5_362_762,
    "vit_small": 21_342_346,
    "timm": 13_985_898,  # resnet26d
}


def _plugin(name: str) -> Backbone:
    plugin = REG.get("backbone", name)
    assert isinstance(plugin, Backbone)
    return plugin


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", BACKBONES)
def test_builds_runs_forward_and_backward(name: str) -> None:
    plugin = _plugin(name)
    assert plugin.family in {"mixer", "resnet", "vit", "cnn", ""}
    model = plugin.build(num_classes=NUM_CLASSES, image_size=IMAGE_SIZE, in_chans=3, **tiny(name))
    out = model(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert out.shape == (2, NUM_CLASSES)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", BUILTINS)
def test_every_parameter_is_documented_and_tested(name: str) -> None:
    plugin = _plugin(name)
    doc = "".join(c.__doc__ or "" for c in type(plugin).__mro__ if issubclass(c, Backbone))
    for key in plugin.defaults:
        assert f"{key}:" in doc, f"{name}: parameter {key!r} is not documented in its docstring"
    assert set(TINY.get(name, {})) <= set(plugin.defaults)
    assert name in PARAMS, f"{name}: add its parameter count to PARAMS"


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count_at_paper_size(name: str) -> None:
    model = _plugin(name).build(num_classes=10, image_size=32, in_chans=3)
    assert _count(model) == PARAMS[name]


def test_resnet20_is_0_27m_and_shortcut_b_adds_projections() -> None:
    plugin = _plugin("resnet20")
    a = _count(plugin.build(num_classes=10, image_size=32, in_chans=3))
    b = _count(plugin.build(num_classes=10, image_size=32, in_chans=3, shortcut="B"))
    assert round(a / 1e6, 2) == 0.27 and b - a == (16 * 32 + 32 * 64) + 2 * (32 + 64)


def test_other_inputs_and_class_counts() -> None:
    for name in ("resnet20", "mobilenet_v1", "mixer_s"):
        model = _plugin(name).build(num_classes=100, image_size=16, in_chans=1, **tiny(name))
        assert model(torch.randn(2, 1, 16, 16)).shape == (2, 100)


def _final_map(model: nn.Module, size: int) -> tuple[int, ...]:
    seen: list[tuple[int, ...]] = []
    pool = next(m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d))
    pool.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    model.eval()(torch.randn(1, 3, size, size))
    return seen[0]


def test_stride_schedules_and_stems() -> None:
    mb = _plugin("mobilenet_v1")
    cifar = mb.build(num_classes=10, image_size=64, in_chans=3, width_mult=0.25)
    imagenet = mb.build(
        num_classes=10, image_size=64, in_chans=3, width_mult=0.25, stride_schedule="imagenet"
    )
    assert _final_map(cifar, 64) == (4, 4) and _final_map(imagenet, 64) == (2, 2)
    r18 = _plugin("resnet18")
    small = r18.build(num_classes=10, image_size=32, in_chans=3)
    big = r18.build(num_classes=10, image_size=32, in_chans=3, stem="imagenet")
    assert isinstance(small.maxpool, nn.Identity) and small.conv1.kernel_size == (3, 3)
    assert isinstance(big.maxpool, nn.MaxPool2d) and big.conv1.kernel_size == (7, 7)
    assert _final_map(small, 32) == (4, 4) and _final_map(big, 32) == (1, 1)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("mixer_s", {"patch_size": 5}, "patch_size must divide image_size"),
        ("resnet20", {"depth": 21}, "depth must be 6n\\+2"),
        ("resnet18", {"stem": "big"}, "stem must be 'cifar' or 'imagenet'"),
        ("mobilenet_v1", {"stride_schedule": "x"}, "stride_schedule must be"),
        ("vit_tiny", {"num_heads": 5}, "num_heads must divide embed_dim"),
        ("timm", {"model": "resnet_nope"}, "is not a timm model"),
        ("mixer_s", {"patch": 4}, "has no parameter 'patch'"),
    ],
)
def test_bad_parameters_state_the_rule(name: str, params: dict[str, object], match: str) -> None:
    with pytest.raises(PluginError, match=match):
        _plugin(name).build(num_classes=10, image_size=32, in_chans=3, **params)


def test_timm_with_argument_presets_the_model() -> None:
    plugin = TimmBackbone.with_argument("test_vit")
    model = plugin.build(num_classes=3, image_size=32, in_chans=3)
    assert type(model).__name__ == "VisionTransformer"
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(PluginError, match="not a timm model"):
        TimmBackbone.with_argument("nope")


def test_not_applicable_pairs_name_registered_plugins() -> None:
    transforms = set(REG.names("transform"))
    assert all(b in BACKBONES and t in transforms for b, t in NOT_APPLICABLE)
