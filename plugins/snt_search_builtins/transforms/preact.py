"""``preact``: the pre-activation transformation of SNT (paper Sec. 4.1, Fig. 4).

Residual blocks are rewritten so the nonlinearity opens the residual branch, right after the
skip connection splits off, and the sum of branch and skip is a sum of linear operations:

* ResNet (timm ``BasicBlock``/``Bottleneck``, also the CIFAR ResNet-20 built from them): the
  activation after the addition moves to the start of the branch, ``Conv-BN-ReLU-...-BN (+) ReLU``
  becomes ``ReLU-Conv-BN-ReLU-...-BN (+)``. No parameters are added.
* Pre-norm blocks (timm ``MixerBlock`` and ViT ``Block``): they have no activation after the
  addition to move, so one is *added*: ``x + MLP(Norm(x))`` becomes ``x + MLP(Norm(act(x)))``
  for both residual branches, ``act`` being a fresh instance of the block's own MLP activation.

``docs/transforms.md`` draws both and explains the choice. Any other model raises
:class:`TransformNotApplicable` (a plain chain such as MobileNet-V1 has no branch to open).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from timm.models.mlp_mixer import MixerBlock
from timm.models.resnet import BasicBlock, Bottleneck
from timm.models.vision_transformer import Block as VitBlock
from torch import nn

from snt_search.layers.eq1_norm import eq1_layer_norm
from snt_search.specs import Transform, TransformNotApplicable, TransformReport

__all__ = ["PreAct", "PreActivation", "apply_preact", "supported_blocks"]

# block type -> (first layer of the residual branch, activation after the addition)
_POST_ADD: dict[type[nn.Module], tuple[str, str]] = {
    BasicBlock: ("conv1", "act2"),
    Bottleneck: ("conv1", "act3"),
}
# block type -> (its pre-norms, one per residual branch; the MLP holding the activation)
_PRE_NORM: dict[type[nn.Module], tuple[tuple[str, ...], str]] = {
    MixerBlock: (("norm1", "norm2"), "mlp_channels"),
    VitBlock: (("norm1", "norm2"), "mlp"),
}
SUPPORTED = "ResNet BasicBlock/Bottleneck (resnet), MixerBlock (mixer), ViT Block (vit)"


class PreActivation(nn.Module):
    """``layer(act(x))``: an activation placed in front of the first layer of a branch.

    Once ``snt`` has made ``act`` an Eq. 1 layer in front of a LayerNorm (Mixer, ViT), the two
    run as one fused pass on CPU float32 (:func:`snt_search.layers.eq1_norm.eq1_layer_norm`).
    """

    def __init__(self, act: nn.Module, layer: nn.Module) -> None:
        super().__init__()
        self.act = act
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = eq1_layer_norm(self.act, self.layer, x)
        return fused if fused is not None else self.layer(self.act(x))


class PreAct(Transform):
    """Pre-activation residual blocks (Fig. 4): the activation opens each residual branch."""

    def apply(self, model: nn.Module, **params: Any) -> TransformReport:
        self.resolve_params(params)
        replaced = apply_preact(model)
        return TransformReport(self.name or "preact", replaced, 0)


def supported_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The residual blocks of ``model`` that ``preact`` knows how to rewrite."""
    known = (*_POST_ADD, *_PRE_NORM)
    return [(n, m) for n, m in model.named_modules() if type(m) in known]


def apply_preact(model: nn.Module) -> dict[str, int]:
    """Rewrite the supported residual blocks of ``model`` in place; return counts per kind.

    Raises :class:`TransformNotApplicable`, leaving the model untouched, if no block is
    supported, a block is already pre-activated, or an activation to move carries parameters
    (run ``preact`` before ``lbias_prelu``; ``snt`` does).
    """
    blocks = supported_blocks(model)
    if not blocks:
        raise TransformNotApplicable(
            f"preact found no residual block it can rewrite in {type(model).__name__}; it "
            f"supports {SUPPORTED}. Use 'lbias_prelu' alone (or snt with preact='auto')."
        )
    plan: list[tuple[nn.Module, str, nn.Module, str | None]] = []  # block, attr, act, post
    for name, block in blocks:
        first, post = _POST_ADD.get(type(block), ("", ""))
        norms, mlp = _PRE_NORM.get(type(block), ((), ""))
        starts = (first,) if first else norms
        if any(isinstance(getattr(block, a), PreActivation) for a in starts):
            raise TransformNotApplicable(
                f"preact: block {name!r} of {type(model).__name__} is already pre-activated "
                f"(its branch starts with a PreActivation); apply preact once."
            )
        if first:
            plan.append((block, first, _fresh(model, name, getattr(block, post)), post))
        else:
            act = _fresh(model, name, getattr(getattr(block, mlp), "act", None))
            plan += [(block, norm, copy.deepcopy(act), None) for norm in norms]
    for block, attr, act, moved in plan:
        setattr(block, attr, PreActivation(act, getattr(block, attr)))
        if moved is not None:
            setattr(block, moved, nn.Identity())
    conv_blocks = [block for block, _, _, moved in plan if moved is not None]
    if conv_blocks:  # the one whose output feeds the head: see keep_grad_channels_last
        conv_blocks[-1].register_forward_hook(keep_grad_channels_last)
    counts: dict[str, int] = {}
    for _, block in blocks:
        key = f"{type(block).__name__}->PreAct"
        counts[key] = counts.get(key, 0) + 1
    return counts


def keep_grad_channels_last(block: nn.Module, inputs: Any, out: torch.Tensor) -> None:
    """Forward hook of a pre-activated conv block: its output's gradient becomes NHWC.

    Without the activation after the addition, the gradient of a block's output reaches
    BatchNorm's backward pass and the skip connection as it arrives, e.g. the broadcast
    NCHW view that global average pooling's backward returns; with channels_last weights
    BatchNorm then takes a strided path that made a pre-activated ResNet-20 step 1.6x slower
    (bf16, 2-core CPU). The hook costs one copy, only when the layout differs. It is set on the
    last rewritten block only: the gradient of any other block's output comes from the next
    block (its convolution's and skip's, NHWC alike), and the hook's Python cost ~20 µs per
    block and step where it changes nothing.
    """
    if (
        isinstance(out, torch.Tensor)
        and out.requires_grad
        and out.ndim == 4
        and out.is_contiguous(memory_format=torch.channels_last)
        and not out.is_contiguous()
    ):
        out.register_hook(_to_channels_last)


def _to_channels_last(grad: torch.Tensor) -> torch.Tensor:
    return grad.contiguous(memory_format=torch.channels_last)


def _fresh(model: nn.Module, name: str, act: nn.Module | None) -> nn.Module:
    """A parameter-free copy of ``act`` that never works in place (its input is the skip)."""
    if act is None or isinstance(act, nn.Identity):
        raise TransformNotApplicable(
            f"preact: block {name!r} of {type(model).__name__} has no activation module to move "
            f"or copy (got {act!r})."
        )
    if any(True for _ in act.parameters()):
        raise TransformNotApplicable(
            f"preact: activation of block {name!r} ({type(act).__name__}) has parameters, which "
            f"cannot move across a change of width. Apply preact before lbias_prelu (snt does)."
        )
    new = copy.deepcopy(act)
    if hasattr(new, "inplace"):
        setattr(new, "inplace", False)  # noqa: B010 - mypy sees only Module attributes
    return new
