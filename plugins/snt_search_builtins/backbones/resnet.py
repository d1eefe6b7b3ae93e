"""ResNet-18 (He et al. 2016, https://arxiv.org/abs/1512.03385) from timm, with a CIFAR stem option.

The SNT paper trains ResNet-18 on ImageNet-1k (Table 3, QAT rows); on 32x32 images the usual
choice replaces the 7x7/2 stem conv and the max-pool by one 3x3/1 conv (``stem="cifar"``), so
the last stage still sees 4x4 maps. For 10 classes: 11,173,962 parameters with the CIFAR
stem, 11,181,642 with the ImageNet one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from timm.models.resnet import BasicBlock, ResNet
from torch import nn

from snt_search.specs import Backbone, Param, PluginError

__all__ = ["ResNet18"]


class ResNet18(Backbone):
    """ResNet-18 (timm) with a CIFAR (3x3 conv, no max-pool) or ImageNet stem.

    Parameters (``defaults``):
        stem: "cifar" (3x3 stride-1 conv, no max-pool) or "imagenet" (7x7 stride-2 conv and a
            3x3 stride-2 max-pool, timm's default).
        drop_path: stochastic-depth rate.
    """

    family: ClassVar[str] = "resnet"
    defaults: ClassVar[dict[str, Param]] = {"stem": "cifar", "drop_path": 0.0}

    def build(
        self, *, num_classes: int, image_size: int, in_chans: int, **params: Any
    ) -> nn.Module:
        p = self.resolve_params(params)
        if p["stem"] not in ("cifar", "imagenet"):
            raise PluginError(
                f"backbone {self.name!r}: stem must be 'cifar' or 'imagenet', got {p['stem']!r}."
            )
        block: Any = BasicBlock  # timm annotates the block type as an instance
        model = ResNet(
            block,
            (2, 2, 2, 2),
            num_classes=num_classes,
            in_chans=in_chans,
            drop_path_rate=p["drop_path"],
        )
        if p["stem"] == "cifar":
            stem = nn.Conv2d(in_chans, 64, 3, padding=1, bias=False)
            nn.init.kaiming_normal_(stem.weight, mode="fan_out", nonlinearity="relu")
            model.add_module("conv1", stem)  # add_module replaces the child of that name
            model.add_module("maxpool", nn.Identity())
        return model
