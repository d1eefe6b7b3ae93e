"""Any timm model by name (https://github.com/huggingface/pytorch-image-models), untrained.

Backbone ``timm`` with ``model = "resnet26d"`` builds ``timm.create_model("resnet26d",
pretrained=False, num_classes=..., in_chans=...)``, passing ``img_size`` too when the model
takes it (ViTs, Mixers), so fixed-size models are built for the study's resolution. Never
loads pretrained weights. ``TimmBackbone.with_argument("resnet26d")`` returns an instance whose
default ``model`` is that name; it is what a registry name ``timm:resnet26d`` resolves to.
"""

from __future__ import annotations

from typing import Any, ClassVar

import timm
from torch import nn

from snt_search.specs import Backbone, Param, PluginError

__all__ = ["TimmBackbone"]


class TimmBackbone(Backbone):
    """Any timm architecture by name, built untrained at the study's input size.

    Parameters (``defaults``):
        model: a name from ``timm.list_models()`` (e.g. "resnet26d", "convnext_atto",
            "vit_tiny_patch16_224"; for 32x32 inputs prefer models without a fixed large size).
    """

    defaults: ClassVar[dict[str, Param]] = {"model": "resnet26d"}

    @classmethod
    def with_argument(cls, model: str) -> TimmBackbone:
        """An instance building ``model`` by default (the ``timm:<model>`` registry names)."""
        _check(model, "timm")
        preset = type(cls.__name__, (cls,), {"defaults": {**cls.defaults, "model": model}})
        return preset()

    def build(
        self, *, num_classes: int, image_size: int, in_chans: int, **params: Any
    ) -> nn.Module:
        p = self.resolve_params(params)
        name = _check(p["model"], self.name or "timm")
        kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans}
        try:
            return timm.create_model(name, pretrained=False, img_size=image_size, **kwargs)
        except TypeError as exc:  # a model without a fixed input size takes no img_size
            if "img_size" not in str(exc):
                raise
            return timm.create_model(name, pretrained=False, **kwargs)


def _check(model: str, plugin: str) -> str:
    if not timm.is_model(model):
        near = timm.list_models(f"*{model[:6]}*")[:8]
        raise PluginError(
            f"backbone {plugin!r}: {model!r} is not a timm model (timm {timm.__version__}); "
            f"close names: {', '.join(near) or 'none'}. List them with "
            f"`python -c \"import timm; print(timm.list_models('*resnet*'))\"`."
        )
    return model
