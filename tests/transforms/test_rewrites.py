"""What preact, lbias_prelu and snt do to a model, block by block, and how they refuse."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from snt_search.layers import LBiasPReLU
from snt_search.specs import PluginError, TransformNotApplicable
from snt_search_builtins.backbones.mixer import MixerS
from snt_search_builtins.transforms.lbias_prelu import LBiasPReLUTransform
from snt_search_builtins.transforms.preact import PreAct, PreActivation
from snt_search_builtins.transforms.snt import SNT


def _mixer() -> nn.Module:
    return MixerS().build(num_classes=10, image_size=32, in_chans=3, num_blocks=2, embed_dim=32)


def _resnet() -> nn.Module:
    return timm.create_model("resnet10t", num_classes=10)


def test_preact_moves_the_post_addition_relu_to_the_start_of_the_branch() -> None:
    model = _resnet()
    report = PreAct().apply(model)
    assert report.replaced == {"BasicBlock->PreAct": 4} and report.added_params == 0
    block = model.layer2[0]
    assert isinstance(block.act2, nn.Identity)
    assert isinstance(block.conv1, PreActivation) and isinstance(block.conv1.act, nn.ReLU)
    assert block.conv1.act.inplace is False  # its input is also the skip connection
    x = torch.randn(2, 64, 8, 8)
    want = block.bn2(block.conv2(block.act1(block.bn1(block.conv1.layer(torch.relu(x))))))
    torch.testing.assert_close(block(x.clone()), want + block.downsample(x))


def test_preact_adds_an_activation_in_front_of_both_mixer_norms() -> None:
    model = _mixer()
    assert PreAct().apply(model).replaced == {"MixerBlock->PreAct": 2}
    for block in model.blocks:
        for norm in (block.norm1, block.norm2):
            assert isinstance(norm, PreActivation) and isinstance(norm.act, nn.GELU)
            assert isinstance(norm.layer, nn.LayerNorm)


def test_preact_refuses_twice_a_plain_chain_and_moved_parameters() -> None:
    model = _mixer()
    PreAct().apply(model)
    with pytest.raises(TransformNotApplicable, match="already pre-activated"):
        PreAct().apply(model)
    chain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten())
    with pytest.raises(TransformNotApplicable, match="Sequential.*supports ResNet"):
        PreAct().apply(chain)
    swapped = _resnet()
    LBiasPReLUTransform().apply(swapped)
    with pytest.raises(TransformNotApplicable, match="before lbias_prelu"):
        PreAct().apply(swapped)
    assert not any(isinstance(m, PreActivation) for m in swapped.modules())  # untouched


class _ChannelsLast(nn.Module):
    """ConvNeXt-style: a Linear applied on [B, H, W, C] followed by GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 4, stride=4)  # 32 -> 8x8, so H == W == C
        self.fc = nn.Linear(8, 6)
        self.act = nn.GELU()
        self.relu = nn.ReLU()
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv(x)).permute(0, 2, 3, 1)
        return self.head(self.act(self.fc(x)).mean((1, 2)))


def test_lbias_prelu_infers_layout_from_neighbouring_layers() -> None:
    model = _ChannelsLast()
    report = LBiasPReLUTransform().apply(model)
    assert report.replaced == {"GELU->LBiasPReLU": 1, "ReLU->LBiasPReLU": 1}
    assert (model.relu.channel_dim, model.relu.num_channels) == (1, 8)
    assert (model.act.channel_dim, model.act.num_channels) == (-1, 6)
    assert report.added_params == 3 * (8 + 6)
    model(torch.randn(2, 3, 32, 32)).sum().backward()


def test_mixer_token_and_channel_mlps_get_their_own_widths() -> None:
    model = _mixer()  # 64 tokens, D_S = 16, D_C = 128
    LBiasPReLUTransform().apply(model)
    block = model.blocks[0]
    assert (block.mlp_tokens.act.channel_dim, block.mlp_tokens.act.num_channels) == (-1, 16)
    assert (block.mlp_channels.act.channel_dim, block.mlp_channels.act.num_channels) == (-1, 128)


def test_lbias_prelu_refuses_shared_module_across_layouts_and_functional_only() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.act = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 5, 1), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.b(self.act(self.a(x))))

    with pytest.raises(TransformNotApplicable, match="'act'.*different channel layouts"):
        LBiasPReLUTransform().apply(Shared())
    functional = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten())
    with pytest.raises(TransformNotApplicable, match="F.relu"):
        LBiasPReLUTransform().apply(functional)


def test_snt_is_preact_then_eq1_everywhere_including_the_new_activations() -> None:
    model = _mixer()
    report = SNT().apply(model)
    assert report.replaced == {"MixerBlock->PreAct": 2, "GELU->LBiasPReLU": 8}
    assert isinstance(model.blocks[0].norm1.act, LBiasPReLU)
    assert model.blocks[0].norm1.act.num_channels == 32
    assert report.added_params == 2 * 3 * (16 + 128 + 2 * 32)


def test_snt_preact_modes_on_a_plain_chain() -> None:
    def chain() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())

    with pytest.warns(UserWarning, match="only the activations are swapped"):
        report = SNT().apply(chain())
    assert report.replaced == {"PreAct blocks": 0, "ReLU->LBiasPReLU": 1}
    with pytest.raises(TransformNotApplicable):
        SNT().apply(chain(), preact="require")
    assert SNT().apply(chain(), preact="off").replaced == report.replaced
    with pytest.raises(PluginError, match="preact must be one of auto, require, off"):
        SNT().apply(chain(), preact="yes")


def test_snt_on_paper_mixer_s_adds_the_documented_19968_params() -> None:
    model = MixerS().build(num_classes=10, image_size=32, in_chans=3)
    report = SNT().apply(model)
    assert report.added_params == 16 * 128 * 3 + 8 * (64 + 512) * 3 == 19_968
    assert sum(p.numel() for p in model.parameters()) == 1_132_170 + 19_968


def test_snt_auto_only_skips_models_without_blocks_not_other_refusals() -> None:
    model = _mixer()
    SNT().apply(model)
    with pytest.raises(TransformNotApplicable, match="already pre-activated"):
        SNT().apply(model)


@pytest.mark.parametrize("backbone", ["resnet20", "resnet18"])
def test_preact_keeps_every_batchnorm_gradient_channels_last(backbone: str) -> None:
    """With channels_last weights every BatchNorm backward pass of a pre-activated ResNet gets
    an NHWC gradient (the strided path was 1.6x slower); the hook that ensures it sits on the
    last block only, the other blocks' gradients arrive NHWC from the next block."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from snt_search.registry import get_registry

    class Layouts(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.grads: list[bool] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if func.overloadpacket is torch.ops.aten.native_batch_norm_backward:
                self.grads.append(args[0].is_contiguous(memory_format=torch.channels_last))
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    model = (
        get_registry()
        .get("backbone", backbone)
        .build(  # type: ignore[attr-defined]
            num_classes=10, image_size=32, in_chans=3
        )
    )
    PreAct().apply(model)
    hooked = [m for m in model.modules() if m._forward_hooks]
    assert len(hooked) == 1
    model = model.to(memory_format=torch.channels_last).train()
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with Layouts() as seen, torch.autocast("cpu", dtype=torch.bfloat16):
        model(x).float().sum().backward()
    assert seen.grads and all(seen.grads), seen.grads
