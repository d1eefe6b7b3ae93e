"""Small parameter overrides so every built-in backbone builds and runs in milliseconds.

Backbones not listed (a third party's) are built with their defaults.
"""

from __future__ import annotations

from typing import Any

IMAGE_SIZE = 32
NUM_CLASSES = 10

TINY: dict[str, dict[str, Any]] = {
    "mixer_s": {"num_blocks": 2, "embed_dim": 32},
    "resnet20": {"depth": 8},
    "resnet18": {"stem": "imagenet"},  # the 7x7/2 stem and max-pool make it 16x cheaper
    "mobilenet_v1": {"width_mult": 0.25, "stride_schedule": "imagenet"},
    "vit_tiny": {"depth": 2, "embed_dim": 48, "num_heads": 2},
    "vit_small": {"depth": 2, "embed_dim": 48, "num_heads": 2},
    "timm": {"model": "test_resnet"},
}

# (backbone, transform) pairs that must raise TransformNotApplicable: a plain chain has no
# residual branch for preact to open (docs/transforms.md). Every other pair must work.
NOT_APPLICABLE = {("mobilenet_v1", "preact")}


def tiny(name: str) -> dict[str, Any]:
    return dict(TINY.get(name, {}))
