"""Token pruning for ViTs: keep the patch tokens the class token attends to most.

SNT paper, Sec. 2.1.1 "Token Pruning" and Table 2 ("Token Pruning (1.18x Speedup)"): after
the blocks listed in ``blocks`` (default: at 1/4, 1/2 and 3/4 of the depth), only the
``keep_rate`` fraction of patch tokens with the highest head-averaged CLS attention go on
(EViT-style, without fusing the dropped ones). Weights are unchanged; the speed-up is real
and measured on ``context.calibration`` (median of ``timing_runs`` forward passes before and
after), reported with the accuracy drop on up to ``calibration_batches`` calibration batches.
Only timm ``VisionTransformer`` models with a class token are supported.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from snt_search.compression.tokens import TokenState, as_vit, compress_tokens, patch_vit
from snt_search.specs import (
    CompressionContext,
    CompressionReport,
    Compressor,
    Param,
    PluginError,
    Range,
)

__all__ = ["TokenPrune"]


class TokenPrune(Compressor):
    """Keep the top-k patch tokens by CLS attention in a ViT (Table 2, token pruning)."""

    defaults: ClassVar[dict[str, Param]] = {
        "keep_rate": 0.7,  # fraction of patch tokens kept at each pruning block
        "blocks": "auto",  # "auto" (depth/4, depth/2, 3*depth/4) or e.g. "3,6,9" (0-based)
        "timing_runs": 10,  # forward passes timed before and after (median)
        "calibration_batches": 4,  # calibration batches for the accuracy drop
    }
    ranges: ClassVar[dict[str, Range]] = {
        "keep_rate": Range(0.0, 1.0, low_open=True),
        "timing_runs": Range(1),
        "calibration_batches": Range(1),
    }

    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        """Patch the ViT blocks of ``model`` in place; report measured speed-up and drop."""
        p = self.resolve_params(params)
        state = self._state(model, p)
        metrics = compress_tokens(
            model, context, state, int(p["timing_runs"]), int(p["calibration_batches"])
        )
        return CompressionReport(self.name, {**metrics, "keep_rate": state.keep_rate})

    def restore(self, model: nn.Module, **params: Any) -> None:
        """Patch the blocks again; token pruning has no weights of its own."""
        patch_vit(model, self._state(model, self.resolve_params(params)))

    def _state(self, model: nn.Module, p: dict[str, Any]) -> TokenState:
        keep = float(p["keep_rate"])
        if not 0.0 < keep <= 1.0:
            raise PluginError(f"keep_rate must be in (0, 1], got {keep!r}. Fix: e.g. 0.7.")
        depth = len(as_vit(model).blocks)
        return TokenState(mode="prune", keep_rate=keep, prune_at=_blocks(str(p["blocks"]), depth))


def _blocks(spec: str, depth: int) -> frozenset[int]:
    if spec == "auto":
        return frozenset({max(depth // 4, 0), depth // 2, (3 * depth) // 4} - {depth})
    try:
        chosen = frozenset(int(part) for part in spec.split(",") if part.strip())
    except ValueError:
        chosen = frozenset({-1})
    if not chosen or not all(0 <= b < depth for b in chosen):
        raise PluginError(
            f"blocks must be 'auto' or comma-separated block indices in [0, {depth}), got "
            f'{spec!r}. Fix: e.g. blocks="3,6,9" for a 12-block ViT.'
        )
    return chosen
