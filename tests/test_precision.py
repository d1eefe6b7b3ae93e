"""train.precision / train.memory_format: what ``auto`` resolves to, and that both train."""

from __future__ import annotations

import pytest
import torch
from test_training import bundle, small_cnn
from torch import nn

from snt_search import precision
from snt_search.config import TrainConfig
from snt_search.registry import get_registry
from snt_search.training import model_is_channels_last, train


@pytest.fixture
def cpu_flags(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(precision.platform, "machine", lambda: "x86_64")

    return set_flags


def test_auto_is_bf16_only_where_the_cpu_has_it(cpu_flags) -> None:  # type: ignore[no-untyped-def]
    cpu_flags("avx2", "avx512f")
    assert precision.autocast_dtype("auto", "cpu") is None
    assert precision.autocast_dtype("bf16", "cpu") is torch.bfloat16  # asked for: emulated
    cpu_flags("avx512f", "avx512_bf16")
    assert precision.autocast_dtype("auto", "cpu") is torch.bfloat16
    mobilenet = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 16, 1))
    assert precision.autocast_dtype("auto", "cpu", mobilenet) is None  # depthwise: fp32
    assert precision.autocast_dtype("bf16", "cpu", mobilenet) is torch.bfloat16
    assert precision.autocast_dtype("auto", "cpu", small_cnn()) is torch.bfloat16
    cpu_flags("amx_bf16")
    assert precision.native_bf16("cpu")
    assert precision.autocast_dtype("fp32", "cpu") is None


def test_channels_last_only_for_conv_models() -> None:
    assert precision.use_channels_last(small_cnn(), "auto")
    assert not precision.use_channels_last(small_cnn(), "contiguous")
    assert not precision.use_channels_last(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), "auto")


def test_bad_values_name_the_setting_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"train.precision must be one of .*'fp16'"):
        TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match=r"train.memory_format must be one of"):
        TrainConfig(memory_format="nhwc")


@pytest.mark.parametrize(
    ("prec", "fmt"), [("bf16", "channels_last"), ("fp32", "contiguous"), ("auto", "auto")]
)
def test_each_precision_and_layout_learns_deterministically(prec: str, fmt: str) -> None:
    data = bundle(128)
    cfg = TrainConfig(
        epochs=3, batch_size=32, lr=3e-3, augment=False, precision=prec, memory_format=fmt
    )
    adam = get_registry().get("optimizer", "adam")
    runs = []
    for _ in range(2):
        model = small_cnn()
        seen: list[bool] = []
        result = train(
            model,
            adam,
            {},
            data,
            cfg,
            seed=5,
            on_epoch=lambda _, m=model, seen=seen: seen.append(model_is_channels_last(m)),
        )
        assert seen == [fmt != "contiguous"] * 3
        assert all(p.is_contiguous() for p in model.parameters())  # back to NCHW after
        assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast only
        runs.append((result.curve[-1].loss, result.curve[-1].test_accuracy))
    assert runs[0] == runs[1]
    assert runs[0][1] > 50.0  # 4 classes: chance is 25%


def test_snt_model_trains_in_bf16_channels_last() -> None:
    """The fused Eq. 1 kernels see bf16 NHWC activations; parameters stay float32."""
    reg = get_registry()
    data = bundle(64)
    model = reg.get("backbone", "resnet20").build(num_classes=4, image_size=32, in_chans=3)
    reg.get("transform", "snt").apply(model)
    cfg = TrainConfig(epochs=1, batch_size=32, precision="bf16", memory_format="channels_last")
    before = [p.detach().clone() for p in model.parameters()]
    result = train(model, reg.get("optimizer", "sam"), {}, data, cfg, seed=0)
    assert torch.isfinite(torch.tensor(result.curve[-1].loss))
    moved = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(moved)  # every parameter, gamma/beta/zeta of Eq. 1 included, got a gradient
