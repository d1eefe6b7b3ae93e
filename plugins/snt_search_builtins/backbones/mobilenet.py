"""MobileNet-V1 (Howard et al. 2017, https://arxiv.org/abs/1704.04861): depthwise-separable convs.

A 3x3 conv of 32 channels, then 13 depthwise-separable blocks (3x3 depthwise conv-BN-ReLU,
1x1 pointwise conv-BN-ReLU) widening to 1024 channels, global average pooling and a linear
head. ``stride_schedule="imagenet"`` is the paper's (stem stride 2, total stride 32: 224 -> 7);
``"cifar"`` makes the stem stride 1 (total stride 16: 32 -> 2), the usual CIFAR variant and the
SNT paper's MobileNet-V1 rows (Table 3, CIFAR-10/100). 3,217,226 parameters for 10 classes at
``width_mult=1``. A plain chain: the ``preact`` transform does not apply (docs/transforms.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from snt_search.specs import Backbone, Param, PluginError

__all__ = ["MobileNetV1", "MobileNetV1Net"]

# (output channels, stride) of the 13 depthwise-separable blocks
_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip


def _conv_bn_act(
    in_chs: int, out_chs: int, kernel: int, stride: int, groups: int = 1
) -> nn.Sequential:
    conv = nn.Conv2d(in_chs, out_chs, kernel, stride, kernel // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_chs), nn.ReLU(inplace=True))


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise conv-BN-ReLU (``dw``), then 1x1 pointwise conv-BN-ReLU (``pw``)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.dw = _conv_bn_act(in_chs, in_chs, 3, stride, groups=in_chs)
        self.pw = _conv_bn_act(in_chs, out_chs, 1, 1)


class MobileNetV1Net(nn.Module):
    """Stem conv, 13 depthwise-separable blocks, global average pool, linear head."""

    def __init__(
        self, num_classes: int, in_chans: int, width_mult: float, stem_stride: int
    ) -> None:
        super().__init__()
        chs = _width(32, width_mult)
        self.stem = _conv_bn_act(in_chans, chs, 3, stem_stride)
        blocks = []
        for out, stride in _BLOCKS:
            blocks.append(DepthwiseSeparable(chs, _width(out, width_mult), stride))
            chs = _width(out, width_mult)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(chs, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))


def _width(chs: int, mult: float) -> int:
    return max(8, int(chs * mult + 0.5))


class MobileNetV1(Backbone):
    """MobileNet-V1 with the CIFAR (stem stride 1) or ImageNet stride schedule.

    Parameters (``defaults``):
        stride_schedule: "cifar" (stem stride 1, 32x32 -> 2x2) or "imagenet" (stem stride 2,
            224x224 -> 7x7).
        width_mult: channel multiplier alpha of the paper (1.0, 0.75, 0.5, 0.25); every width is
            rounded and at least 8.
    """

    family: ClassVar[str] = "cnn"
    defaults: ClassVar[dict[str, Param]] = {"stride_schedule": "cifar", "width_mult": 1.0}

    def build(
        self, *, num_classes: int, image_size: int, in_chans: int, **params: Any
    ) -> nn.Module:
        p = self.resolve_params(params)
        strides = {"cifar": 1, "imagenet": 2}
        if p["stride_schedule"] not in strides or p["width_mult"] <= 0:
            raise PluginError(
                f"backbone {self.name!r}: stride_schedule must be 'cifar' or 'imagenet' and "
                f"width_mult > 0, got {p['stride_schedule']!r} and {p['width_mult']}."
            )
        stem_stride = strides[p["stride_schedule"]]
        return MobileNetV1Net(num_classes, in_chans, p["width_mult"], stem_stride)
