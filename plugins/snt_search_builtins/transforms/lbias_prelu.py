"""``lbias_prelu``: swap every activation module for the learnable-bias PReLU of Eq. 1.

SNT paper Sec. 4.2. Works on any model whose activations are modules (``nn.ReLU``, ``nn.GELU``,
timm's activation layers, ...; see ``ACTIVATIONS``). Gates (``Sigmoid``, ``HardSigmoid``,
``Tanh``, ``Softmax``) are left alone, and activations called as functions inside a
``forward`` (``F.relu(x)``) cannot be found and stay as they are.

Each replacement needs a channel layout and count. One forward pass in eval mode on a dummy
batch records the input shape of every activation call and the channel-bearing layers (conv,
linear, norm) run just before and just after it: the producer's or consumer's channel count
picks the dimension (``1`` for NCHW maps, ``-1`` for tokens and linear features). An activation
module called at several places with different layouts cannot hold one set of per-channel
parameters and makes the transform raise :class:`TransformNotApplicable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from timm.layers import activations as timm_act
from torch import nn

from snt_search.layers import LBiasPReLU
from snt_search.specs import Param, Transform, TransformNotApplicable, TransformReport

__all__ = ["ACTIVATIONS", "LBiasPReLUTransform", "swap_activations"]

ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
    nn.ELU, nn.CELU, nn.SELU,
    timm_act.GELU, timm_act.GELUTanh, timm_act.QuickGELU, timm_act.Swish, timm_act.Mish,
    timm_act.HardSwish, timm_act.HardMish, timm_act.PReLU,
)  # fmt: skip
_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.GroupNorm)
_LAST = (nn.Linear, nn.LayerNorm)


class LBiasPReLUTransform(Transform):
    """Replace each activation module by LBiasPReLU (Eq. 1), per channel, in any model.

    Parameters (``defaults``):
        init_slope: initial negative slope beta of every new activation (0.25, as PReLU).
    """

    defaults: ClassVar[dict[str, Param]] = {"init_slope": 0.25}

    def apply(self, model: nn.Module, **params: Any) -> TransformReport:
        p = self.resolve_params(params)
        replaced, added = swap_activations(model, init_slope=p["init_slope"])
        return TransformReport(self.name or "lbias_prelu", replaced, added)


def swap_activations(model: nn.Module, *, init_slope: float = 0.25) -> tuple[dict[str, int], int]:
    """Swap the activation modules of ``model`` for LBiasPReLU in place.

    Returns ``({"GELU->LBiasPReLU": n, ...}, parameters added)``. Raises
    :class:`TransformNotApplicable` if the model has no activation module that runs in its
    forward pass or one is shared between layouts.
    """
    before = _count(model)
    layouts = _trace_layouts(model)
    if not layouts:
        found = sorted({type(m).__name__ for m in model.modules() if isinstance(m, ACTIVATIONS)})
        raise TransformNotApplicable(
            f"lbias_prelu found no activation module run by {type(model).__name__}'s forward "
            f"(looked for {', '.join(t.__name__ for t in ACTIVATIONS)}; present but unused: "
            f"{found or 'none'}). Activations called as functions (F.relu) cannot be swapped: "
            f"make them modules, or use the 'none' transform."
        )
    replaced: dict[str, int] = {}
    for names, act, (dim, channels, ref) in layouts:
        inplace = bool(getattr(act, "inplace", False))  # as safe as the activation it replaces
        new = LBiasPReLU(channels, dim, init_slope, inplace).to(device=ref.device, dtype=ref.dtype)
        new.train(act.training)
        for name in names:
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, new)
        key = f"{type(act).__name__}->LBiasPReLU"
        replaced[key] = replaced.get(key, 0) + 1
    return replaced, _count(model) - before


@dataclass
class _Calls:
    layouts: set[tuple[int, int]] = field(default_factory=set)
    ref: torch.Tensor | None = None


def _trace_layouts(model: nn.Module) -> list[tuple[list[str], nn.Module, tuple[int, int, Any]]]:
    """Run one dummy forward pass; return ``(paths, activation, (dim, channels, ref))`` each."""
    events: list[tuple[nn.Module, torch.Tensor]] = []

    def record(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor):
            events.append((module, inputs[0]))

    watched = [m for m in model.modules() if isinstance(m, ACTIVATIONS + _FIRST + _LAST)]
    watched = [m for m in watched if not isinstance(m, LBiasPReLU)]
    handles = [m.register_forward_hook(record) for m in watched]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(_example_input(model))
    except Exception as exc:
        raise TransformNotApplicable(
            f"lbias_prelu could not run a dummy batch through {type(model).__name__} to find "
            f"each activation's channel layout: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode

    calls: dict[nn.Module, _Calls] = {}
    for i, (module, x) in enumerate(events):
        if isinstance(module, ACTIVATIONS):
            entry = calls.setdefault(module, _Calls())
            entry.layouts.add(_layout(x, _neighbour(events, i, -1), _neighbour(events, i, 1)))
            entry.ref = x
    paths: dict[nn.Module, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        if m in calls:
            paths.setdefault(m, []).append(name)
    out = []
    for act, entry in calls.items():
        if len(entry.layouts) > 1:
            raise TransformNotApplicable(
                f"lbias_prelu: activation {paths[act][0]!r} of {type(model).__name__} is called "
                f"on tensors with different channel layouts {sorted(entry.layouts)}, so one set "
                f"of per-channel parameters cannot replace it; give each call site its own module."
            )
        ((dim, channels),) = entry.layouts
        out.append((paths[act], act, (dim, channels, entry.ref)))
    return out


def _neighbour(events: list[tuple[nn.Module, torch.Tensor]], i: int, step: int) -> nn.Module | None:
    """The nearest conv/linear/norm layer run before (``step=-1``) or after (``1``) event ``i``."""
    j = i + step
    while 0 <= j < len(events):
        if not isinstance(events[j][0], ACTIVATIONS):
            return events[j][0]
        j += step
    return None


def _channels(layer: nn.Module, produced: bool) -> int | None:
    for attr in ("out_channels", "out_features") if produced else ("in_channels", "in_features"):
        if hasattr(layer, attr):
            return int(getattr(layer, attr))
    if isinstance(layer, nn.LayerNorm):
        return int(layer.normalized_shape[-1])
    if isinstance(layer, nn.GroupNorm):
        return int(layer.num_channels)
    return int(getattr(layer, "num_features", 0)) or None


def _layout(
    x: torch.Tensor, producer: nn.Module | None, consumer: nn.Module | None
) -> tuple[int, int]:
    """``(channel_dim, channels)`` of activation input ``x`` (see the module docstring)."""
    if x.ndim <= 2:
        return -1, int(x.shape[-1])
    for layer, produced in ((producer, True), (consumer, False)):
        if layer is None:
            continue
        dim = 1 if isinstance(layer, _FIRST) else -1
        if x.shape[dim] == _channels(layer, produced):
            return dim, int(x.shape[dim])
    dim = 1 if x.ndim == 4 else -1
    return dim, int(x.shape[dim])


def _example_input(model: nn.Module) -> torch.Tensor:
    """A batch of 2 images: channels from the first conv, size from a patch embed or 32."""
    ref = next(model.parameters(), None)
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    in_chans = first_conv.in_channels if first_conv is not None else 3
    sizes = (getattr(m, "img_size", None) for m in model.modules())
    size: Any = next((s for s in sizes if s is not None), 32)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    kw: dict[str, Any] = {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
    return torch.randn(2, in_chans, h, w, **kw)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
