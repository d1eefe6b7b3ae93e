"""Token merging for ViTs: bipartite soft matching of similar tokens in every block.

SNT paper, Sec. 2.1.1 (combining tokens instead of pruning them, [34, 38, 59, 27]) and Table 2
("Token Merging (1.90x Speedup)"). In each block, between attention and MLP, patch tokens are
split alternately into two sets, each token of the first is matched to its most similar token
of the second (cosine similarity of attention keys) and the most similar pairs are merged into
size-weighted averages; attention then weights a merged token by ``log(size)``. ``merge_rate``
is the fraction of the *initial* patch tokens merged away per block (at most half of the patch
tokens left). Implemented for this project in :mod:`snt_search.compression.tokens`.

Weights are unchanged; speed-up and accuracy drop are measured on ``context.calibration``
as for ``token_prune``. timm ``VisionTransformer`` models with a class token only.
"""

from __future__ import annotations

import math
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

__all__ = ["TokenMerge"]


class TokenMerge(Compressor):
    """Merge similar tokens in every ViT block by bipartite matching (Table 2, merging)."""

    defaults: ClassVar[dict[str, Param]] = {
        "merge_rate": 0.08,  # fraction of the initial patch tokens merged per block (~r=16/196)
        "timing_runs": 10,  # forward passes timed before and after (median)
        "calibration_batches": 4,  # calibration batches for the accuracy drop
    }
    ranges: ClassVar[dict[str, Range]] = {
        "merge_rate": Range(0.0, 0.5),
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
        return CompressionReport(self.name, {**metrics, "merged_per_block": float(state.merge_r)})

    def restore(self, model: nn.Module, **params: Any) -> None:
        """Patch the blocks again; token merging has no weights of its own."""
        patch_vit(model, self._state(model, self.resolve_params(params)))

    def _state(self, model: nn.Module, p: dict[str, Any]) -> TokenState:
        rate = float(p["merge_rate"])
        if not 0.0 <= rate <= 0.5:
            raise PluginError(f"merge_rate must be in [0, 0.5], got {rate!r}. Fix: e.g. 0.08.")
        patches = int(as_vit(model).patch_embed.num_patches)
        return TokenState(mode="merge", merge_r=math.floor(rate * patches))
