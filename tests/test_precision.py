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
    assert precision.autocast_dtype("auto", "cpu") is torch.bfloat16
    assert precision.fp32_depthwise("auto", "cpu", mobilenet)  # ... with depthwise in fp32
    assert not precision.fp32_depthwise("bf16", "cpu", mobilenet)  # bf16 asked for: all of it
    assert not precision.fp32_depthwise("auto", "cpu", small_cnn())
    assert precision.autocast_dtype("bf16", "cpu") is torch.bfloat16
    assert precision.autocast_dtype("auto", "cpu") is torch.bfloat16
    cpu_flags("amx_bf16")
    assert precision.native_bf16("cpu")
    assert precision.autocast_dtype("fp32", "cpu") is None


def test_depthwise_fp32_runs_only_depthwise_convs_in_float32_and_only_inside() -> None:
    torch.manual_seed(0)
    dw, pw = nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Conv2d(4, 8, 1)
    model = nn.Sequential(dw, pw)
    x = torch.randn(2, 4, 6, 6)
    seen: dict[str, torch.dtype] = {}
    dw.register_forward_hook(lambda m, i, o: seen.__setitem__("dw", o.dtype))
    pw.register_forward_hook(lambda m, i, o: seen.__setitem__("pw", o.dtype))
    with precision.depthwise_fp32(model), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert seen == {"dw": torch.float32, "pw": torch.bfloat16}
    out.float().sum().backward()
    assert dw.weight.grad is not None and dw.weight.grad.dtype == torch.float32
    torch.testing.assert_close(out.float(), model(x), rtol=2e-2, atol=2e-2)
    assert "forward" not in vars(dw)  # the class's forward again
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x)
    assert seen["dw"] == torch.bfloat16
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


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


def test_auto_trains_depthwise_convs_in_float32_on_a_bf16_cpu(cpu_flags) -> None:  # type: ignore[no-untyped-def]
    cpu_flags("avx512f", "avx512_bf16")
    torch.manual_seed(0)
    dw, pw = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 8, 1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), dw, pw, nn.Flatten(), nn.Linear(512, 4))
    dtypes: set[torch.dtype] = set()
    pw_dtypes: set[torch.dtype] = set()
    dw.register_forward_hook(lambda m, i, o: dtypes.add(o.dtype) if m.training else None)
    pw.register_forward_hook(lambda m, i, o: pw_dtypes.add(o.dtype) if m.training else None)
    cfg = TrainConfig(epochs=3, batch_size=32, lr=3e-3, augment=False)  # precision "auto"
    adam = get_registry().get("optimizer", "adam")
    result = train(model, adam, {}, bundle(128), cfg, seed=5)
    assert pw_dtypes == {torch.bfloat16}  # trained under bf16 autocast ...
    assert dtypes == {torch.float32}  # ... but the depthwise conv ran in fp32
    assert "forward" not in vars(dw)  # and is itself again after training
    assert result.curve[-1].test_accuracy > 50.0
