"""Token pruning and token merging for timm Vision Transformers (inference-time).

SNT paper, Sec. 2.1.1 "Token Pruning" and Table 2 ("Token Pruning (1.18x Speedup)", "Token
Merging (1.90x Speedup)"): a ViT gets faster when later blocks process fewer tokens.

* **Pruning** keeps, after chosen blocks, the ``keep_rate`` fraction of patch tokens that the
  class token attends to most (head-averaged attention of the CLS query, as in EViT [38],
  without EViT's fusion of the dropped tokens).
* **Merging** is a bipartite soft matching in every block, between attention and MLP: patch
  tokens are split alternately into sets A and B, each A token is matched to its most similar
  B token by the cosine similarity of the attention keys (averaged over heads), and the ``r``
  most similar pairs are merged into a size-weighted average. Token sizes are tracked and
  added as ``log(size)`` to the attention logits so a merged token keeps the attention mass
  of the tokens it stands for. Written from that description for this project.

The blocks are patched in place by switching their class to a subclass of timm's ``Block``
whose forward computes attention explicitly (the attention map is needed), so parameter names
and the ``state_dict`` don't change. Prefix tokens (class/register tokens) are never removed.
The speed-up is measured, not estimated: :func:`time_forward` on the same batch before and after.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from snt_search.specs import CompressionContext, PluginError

__all__ = [
    "TokenState",
    "as_vit",
    "bipartite_merge",
    "compress_tokens",
    "patch_vit",
    "time_forward",
]


@dataclass
class TokenState:
    """Settings shared by the patched blocks of one model, plus what the last forward did."""

    mode: str  # "prune" | "merge"
    keep_rate: float = 1.0  # prune: fraction of patch tokens kept at each pruning block
    prune_at: frozenset[int] = frozenset()  # prune: indices of the blocks that prune
    merge_r: int = 0  # merge: tokens merged away per block
    prefix: int = 1
    size: torch.Tensor | None = None  # merge: (B, N, 1) tokens represented by each token
    tokens: list[int] = field(default_factory=list)  # tokens leaving each block, last forward


def as_vit(model: nn.Module) -> VisionTransformer:
    """``model`` as a timm ``VisionTransformer`` with a class token and standard blocks."""
    if not isinstance(model, VisionTransformer) or not getattr(model, "has_class_token", False):
        raise PluginError(
            f"token compression needs a timm VisionTransformer with a class token; got "
            f"{type(model).__name__}. Fix: use it on ViT backbones only (e.g. restrict the "
            "study space), other families have no tokens to drop."
        )
    blocks = list(model.blocks)
    if not blocks or not all(isinstance(b, Block) for b in blocks):
        raise PluginError(
            "token compression supports timm's standard vision_transformer.Block only; "
            f"found {sorted({type(b).__name__ for b in blocks})}."
        )
    return model


def patch_vit(model: nn.Module, state: TokenState) -> None:
    """Make every block of ``model`` follow ``state`` (replacing an earlier patch)."""
    vit = as_vit(model)
    state.prefix = int(vit.num_prefix_tokens)
    for index, block in enumerate(vit.blocks):
        block.__class__ = _CompressedBlock
        patched = cast(_CompressedBlock, block)
        patched.token_state = state
        patched.token_index = index
    if _reset_state not in vit._forward_pre_hooks.values():
        vit.register_forward_pre_hook(_reset_state)


def time_forward(models: Sequence[nn.Module], x: torch.Tensor, runs: int = 10) -> list[float]:
    """Fastest of ``runs`` no-grad eval forwards on ``x`` for each model, timed interleaved.

    The models take turns (after 2 warm-up rounds) so load from other processes hits all of
    them alike, and the minimum (as ``timeit`` advises) is the least disturbed measurement.
    On a machine shared with other jobs, speed-ups of CPU timings stay noisy; pin threads
    (``torch.set_num_threads``) or time on an idle machine for numbers to publish.
    """
    modes = [m.training for m in models]
    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for m in models:
            m.eval()
        for i in range(max(runs, 1) + 2):
            for m, record in zip(models, times, strict=True):
                start = time.perf_counter()
                m(x)
                if i >= 2:
                    record.append(time.perf_counter() - start)
    for m, mode in zip(models, modes, strict=True):
        m.train(mode)
    return [min(t) for t in times]


def _reset_state(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
    for block in module.modules():
        if isinstance(block, _CompressedBlock):
            block.token_state.size = None
            block.token_state.tokens = []


def _attend(
    attn: Any, x: torch.Tensor, size: torch.Tensor | None, need_cls: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """timm ``Attention`` with a size bias: (output, CLS attention row or None, mean keys).

    The output uses the fused kernel; the CLS row is computed apart, only in pruning blocks.
    """
    batch, n, _ = x.shape
    heads = attn.num_heads
    qkv = attn.qkv(x).reshape(batch, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    bias = None if size is None else size.log().reshape(batch, 1, 1, n).to(q.dtype)
    cls_row = None
    if need_cls:  # only the class token's query row: O(N) extra, not the N x N map
        logits = (q[:, :, :1] * attn.scale) @ k.transpose(-2, -1)
        cls_row = (logits if bias is None else logits + bias).softmax(dim=-1)[:, :, 0]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=attn.scale)
    out = out.transpose(1, 2).reshape(batch, n, -1)
    out = attn.norm(out)
    gate = getattr(attn, "gate", None)
    if gate is not None:
        out = out * gate(x).sigmoid()
    return attn.proj(out), cls_row, k.mean(dim=1)


def _keep_attended(
    x: torch.Tensor, cls_row: torch.Tensor, keep_rate: float, prefix: int
) -> torch.Tensor:
    """Keep the patch tokens the class token attends to most, in their original order."""
    patches = x.shape[1] - prefix
    keep = max(1, math.ceil(keep_rate * patches))
    if keep >= patches:
        return x
    score = cls_row[:, :, prefix:].mean(dim=1)
    idx = score.topk(keep, dim=-1).indices.sort(dim=-1).values + prefix
    kept = x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    return torch.cat([x[:, :prefix], kept], dim=1)


def bipartite_merge(
    x: torch.Tensor, size: torch.Tensor, keys: torch.Tensor, r: int, prefix: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge the ``r`` most similar (A, B) pairs of patch tokens; prefix tokens stay apart.

    ``x`` is ``(B, N, C)``, ``size`` ``(B, N, 1)`` the tokens each one stands for, ``keys``
    ``(B, N, D)`` the similarity metric. A = even, B = odd patch positions; each A token is
    matched to its most cosine-similar B token and the ``r`` best-matched A tokens are folded
    into their partners as size-weighted averages, so ``sum(x * size)`` and ``sum(size)`` are
    preserved. Returns the new ``(x, size)`` with ``N - r`` tokens.
    """
    head, body = x[:, :prefix], x[:, prefix:]
    head_size, body_size = size[:, :prefix], size[:, prefix:]
    r = min(r, body.shape[1] // 2)
    if r <= 0:
        return x, size
    metric = keys[:, prefix:]
    metric = metric / metric.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    sim = metric[:, ::2] @ metric[:, 1::2].transpose(1, 2)  # (B, |A|, |B|)
    best, partner = sim.max(dim=-1)
    order = best.argsort(dim=-1, descending=True)
    merged, stay = order[:, :r], order[:, r:].sort(dim=-1).values
    dim = x.shape[-1]
    a_sum, b_sum = (body * body_size)[:, ::2], (body * body_size)[:, 1::2]
    a_size, b_size = body_size[:, ::2], body_size[:, 1::2]
    dst = partner.gather(1, merged).unsqueeze(-1)
    src = merged.unsqueeze(-1)
    b_sum = b_sum.scatter_add(1, dst.expand(-1, -1, dim), a_sum.gather(1, src.expand(-1, -1, dim)))
    b_size = b_size.scatter_add(1, dst, a_size.gather(1, src))
    keep_sum = a_sum.gather(1, stay.unsqueeze(-1).expand(-1, -1, dim))
    keep_size = a_size.gather(1, stay.unsqueeze(-1))
    new_size = torch.cat([head_size, keep_size, b_size], dim=1)
    new_body = torch.cat([keep_sum, b_sum], dim=1) / torch.cat([keep_size, b_size], dim=1)
    return torch.cat([head, new_body], dim=1), new_size


class _CompressedBlock(Block):
    """A timm ``Block`` that prunes or merges tokens as its shared :class:`TokenState` says."""

    token_state: TokenState
    token_index: int

    def forward(self, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if args or any(v not in (None, False) for v in kwargs.values()):
            raise PluginError("token-compressed ViT blocks do not support attention masks.")
        state = self.token_state
        merging = state.mode == "merge"
        if merging and state.size is None:
            state.size = x.new_ones(x.shape[0], x.shape[1], 1)
        pruning = not merging and self.token_index in state.prune_at
        y, cls_row, keys = _attend(
            self.attn, self.norm1(x), state.size if merging else None, need_cls=pruning
        )
        x = x + self.drop_path1(self.ls1(y))
        if merging and state.size is not None:
            x, state.size = bipartite_merge(x, state.size, keys, state.merge_r, state.prefix)
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        if pruning and cls_row is not None:
            x = _keep_attended(x, cls_row, state.keep_rate, state.prefix)
        state.tokens.append(int(x.shape[1]))
        return x


def compress_tokens(
    model: nn.Module, context: CompressionContext, state: TokenState, runs: int, batches: int
) -> dict[str, float]:
    """Patch ``model`` with ``state``; measure speed-up and calibration accuracy around it.

    Timing and accuracy use ``context.calibration`` (first batch for timing, up to
    ``batches`` batches for accuracy, labels as given), relative to the model as handed in;
    an untouched deep copy of it is timed interleaved with the patched model.
    """
    vit = as_vit(model)
    if not context.calibration:
        raise PluginError(
            "token compression measures its speed-up and accuracy drop on calibration data, "
            "but the CompressionContext has none. Fix: pass calibration batches."
        )
    device = next(model.parameters()).device
    data = [(x.to(device), y.to(device)) for x, y in context.calibration[: max(batches, 1)]]
    reference = copy.deepcopy(model)
    before_acc = _accuracy(model, data)
    patch_vit(model, state)
    after_acc = _accuracy(model, data)
    before_time, after_time = time_forward([reference, model], data[0][0], runs)
    del reference
    initial = state.prefix + int(vit.patch_embed.num_patches)
    return {
        "speedup": before_time / after_time,
        "calibration_accuracy_before": before_acc,
        "calibration_accuracy_after": after_acc,
        "accuracy_drop": before_acc - after_acc,
        "final_tokens": float(state.tokens[-1]),
        "mean_token_ratio": statistics.fmean(state.tokens) / initial,
    }


def _accuracy(model: nn.Module, data: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    was_training = model.training
    model.eval()
    hits = total = 0
    with torch.inference_mode():
        for x, y in data:
            hits += int((model(x).argmax(-1) == y).sum())
            total += int(y.numel())
    model.train(was_training)
    return hits / max(total, 1)
