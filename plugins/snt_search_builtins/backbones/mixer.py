"""MLP-Mixer backbones (Tolstikhin et al. 2021, https://arxiv.org/abs/2105.01601), built with timm.

``mixer_s`` is the paper's MLP-Mixer-S (SNT paper Sec. 5.2.2): 32x32 input, 4x4 patches (64
tokens), hidden size 128, token-mixing width D_S = 64, channel-mixing width D_C = 512, 8 blocks;
1,132,170 parameters for 10 classes. Every size is a parameter, so the same plugin builds a tiny
Mixer for tests or a larger one for a search.
"""

from __future__ import annotations

from typing import Any, ClassVar

from timm.models.mlp_mixer import MlpMixer
from torch import nn

from snt_search.specs import Backbone, Param, PluginError

__all__ = ["MixerS"]


class MixerS(Backbone):
    """MLP-Mixer-S of the SNT paper (patch 4, hidden 128, D_S 64, D_C 512, 8 blocks).

    Parameters (``defaults``):
        num_blocks: number of Mixer blocks (paper: 8).
        embed_dim: hidden size C of each token (paper: 128).
        patch_size: side of the square patches; must divide ``image_size`` (paper: 4).
        token_ratio: D_S / embed_dim, the token-mixing MLP width (paper: 64 / 128 = 0.5).
        channel_ratio: D_C / embed_dim, the channel-mixing MLP width (paper: 512 / 128 = 4.0).
        drop_path: stochastic-depth rate (paper: 0).
    """

    family: ClassVar[str] = "mixer"
    defaults: ClassVar[dict[str, Param]] = {
        "num_blocks": 8,
        "embed_dim": 128,
        "patch_size": 4,
        "token_ratio": 0.5,
        "channel_ratio": 4.0,
        "drop_path": 0.0,
    }

    def build(
        self, *, num_classes: int, image_size: int, in_chans: int, **params: Any
    ) -> nn.Module:
        p = self.resolve_params(params)
        if image_size % p["patch_size"]:
            raise PluginError(
                f"backbone {self.name!r}: patch_size must divide image_size, got patch_size="
                f"{p['patch_size']} for image_size={image_size}; pick a divisor of {image_size}."
            )
        return MlpMixer(
            num_classes=num_classes,
            img_size=image_size,
            in_chans=in_chans,
            patch_size=p["patch_size"],
            num_blocks=p["num_blocks"],
            embed_dim=p["embed_dim"],
            mlp_ratio=(p["token_ratio"], p["channel_ratio"]),
            drop_path_rate=p["drop_path"],
        )
