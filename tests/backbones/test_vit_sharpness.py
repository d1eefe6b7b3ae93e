"""ViT backbones support the Hessian-vector products lambda_max needs (unfused attention)."""

from __future__ import annotations

import math

import torch

from snt_search.registry import get_registry
from snt_search.sharpness import estimate_lambda_max


def test_vit_lambda_max_is_finite() -> None:
    torch.manual_seed(0)
    model = (
        get_registry()
        .get("backbone", "vit_tiny")
        .build(  # type: ignore[attr-defined]
            num_classes=3,
            image_size=8,
            in_chans=3,
            patch_size=4,
            embed_dim=16,
            depth=1,
            num_heads=2,
        )
    )
    batch = (torch.randn(4, 3, 8, 8), torch.randint(0, 3, (4,)))
    result = estimate_lambda_max(model, [batch], max_iter=5)
    assert math.isfinite(result.lambda_max)
