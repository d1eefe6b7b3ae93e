"""Vision Transformers (Dosovitskiy et al. 2021, https://arxiv.org/abs/2010.11929) sized for CIFAR.

timm's ``VisionTransformer`` at 32x32 input with 4x4 patches (64 tokens + a class token).
``vit_tiny`` (embed 192, 12 blocks, 3 heads; 5.36M parameters for 10 classes) and
``vit_small`` (embed 384, 12 blocks, 6 heads; 21.34M) keep the DeiT widths. The SNT paper
studies ViT-B's sharpness and outliers (Sec. 3); these are the trainable-on-CIFAR sizes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from timm.models.vision_transformer import VisionTransformer
from torch import nn

from snt_search.specs import Backbone, Param, PluginError

__all__ = ["ViTSmall", "ViTTiny"]


class ViTTiny(Backbone):
    """ViT-Tiny at 32x32, patch 4 (embed 192, depth 12, 3 heads).

    Parameters (``defaults``):
        patch_size: patch side; must divide ``image_size``.
        embed_dim: token width; must be a multiple of ``num_heads``.
        depth: number of transformer blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / embed_dim.
        drop_path: stochastic-depth rate.
        fused_attn: use PyTorch's fused attention kernel. Off by default: on CPU it has no
            double backward, which the lambda_max estimate (Hessian-vector products) needs.
    """

    family: ClassVar[str] = "vit"
    defaults: ClassVar[dict[str, Param]] = {
        "patch_size": 4,
        "embed_dim": 192,
        "depth": 12,
        "num_heads": 3,
        "mlp_ratio": 4.0,
        "drop_path": 0.0,
        "fused_attn": False,
    }

    def build(
        self, *, num_classes: int, image_size: int, in_chans: int, **params: Any
    ) -> nn.Module:
        p = self.resolve_params(params)
        if image_size % p["patch_size"] or p["embed_dim"] % p["num_heads"]:
            raise PluginError(
                f"backbone {self.name!r}: patch_size must divide image_size and num_heads must "
                f"divide embed_dim, got patch_size={p['patch_size']} for image_size="
                f"{image_size}, embed_dim={p['embed_dim']} with num_heads={p['num_heads']}."
            )
        model = VisionTransformer(
            img_size=image_size,
            patch_size=p["patch_size"],
            in_chans=in_chans,
            num_classes=num_classes,
            embed_dim=p["embed_dim"],
            depth=p["depth"],
            num_heads=p["num_heads"],
            mlp_ratio=p["mlp_ratio"],
            drop_path_rate=p["drop_path"],
        )
        for module in model.modules():
            if hasattr(module, "fused_attn"):
                module.fused_attn = p["fused_attn"]
        return model


class ViTSmall(ViTTiny):
    """ViT-Small at 32x32, patch 4 (embed 384, depth 12, 6 heads); parameters as ``vit_tiny``."""

    defaults: ClassVar[dict[str, Param]] = {**ViTTiny.defaults, "embed_dim": 384, "num_heads": 6}
