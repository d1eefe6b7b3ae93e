"""CIFAR ResNets (He et al. 2016, https://arxiv.org/abs/1512.03385, Sec. 4.2): ResNet-20 and kin.

A 3x3 stem conv of ``width`` channels, three stages of ``n = (depth - 2) / 6`` basic blocks with
``width, 2 width, 4 width`` channels (strides 1, 2, 2), global average pooling and a linear
head. ResNet-20 (``depth=20``, ``width=16``) has 0.27M parameters (269,722 for 10 classes with
the parameter-free shortcut "A"); it is the backbone of the SNT paper's Tables 3-4 and Fig. 5.
The blocks are timm's ``BasicBlock`` so the ``preact`` transform rewrites them like any timm ResNet.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from timm.models.resnet import BasicBlock
from torch import nn

from snt_search.specs import Backbone, Param, PluginError

__all__ = ["CifarResNet", "ResNet20"]


class PadShortcut(nn.Module):
    """Option A shortcut: subsample by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = out_chs - in_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x[:, :, ::s, ::s] as a 1x1 pooling: same values, but its backward pass keeps the
        # gradient channels_last (slicing's scatters into a fresh NCHW buffer, which cost a
        # layout conversion per step downstream)
        x = F.avg_pool2d(x, 1, self.stride) if self.stride > 1 else x
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class CifarResNet(nn.Module):
    """Stem conv3x3-BN-ReLU, three stages of ``blocks`` BasicBlocks, pool, linear head."""

    def __init__(
        self, blocks: int, width: int, num_classes: int, in_chans: int, shortcut: str = "A"
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        stages: list[nn.Module] = []
        chs = width
        for i, out in enumerate((width, 2 * width, 4 * width)):
            layers = []
            for j in range(blocks):
                stride = 2 if i > 0 and j == 0 else 1
                down = _shortcut(chs, out, stride, shortcut) if (stride, chs) != (1, out) else None
                layers.append(BasicBlock(chs, out, stride=stride, downsample=down))
                chs = out
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(chs, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.pool(x).flatten(1))


def _shortcut(in_chs: int, out_chs: int, stride: int, kind: str) -> nn.Module:
    if kind == "A":
        return PadShortcut(in_chs, out_chs, stride)
    conv = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_chs))


class ResNet20(Backbone):
    """CIFAR ResNet-20 (0.27M parameters), the paper's ResNet-20; other depths 6n+2 too.

    Parameters (``defaults``):
        depth: total depth 6n+2 (20 -> 3 blocks per stage; 32, 44, 56, 110 also valid).
        width: channels of the first stage; the others have 2x and 4x (16 -> 16/32/64).
        shortcut: "A" zero-pads on downsampling (He et al., no parameters, 269,722 params for
            10 classes) or "B" uses a 1x1 conv + BN projection (+2,752 params).
    """

    family: ClassVar[str] = "resnet"
    defaults: ClassVar[dict[str, Param]] = {"depth": 20, "width": 16, "shortcut": "A"}

    def build(
        self, *, num_classes: int, image_size: int, in_chans: int, **params: Any
    ) -> nn.Module:
        p = self.resolve_params(params)
        if p["depth"] < 8 or (p["depth"] - 2) % 6:
            raise PluginError(
                f"backbone {self.name!r}: depth must be 6n+2 with n >= 1 (8, 14, 20, 32, ...), "
                f"got {p['depth']}."
            )
        if p["shortcut"] not in ("A", "B"):
            raise PluginError(
                f"backbone {self.name!r}: shortcut must be 'A' or 'B', got {p['shortcut']!r}."
            )
        blocks = (p["depth"] - 2) // 6
        return CifarResNet(blocks, p["width"], num_classes, in_chans, p["shortcut"])
