"""Optimizer plugins: build a ``torch.optim.Optimizer`` and declare how it must be stepped.

Contract: ``Optimizer.build(params, lr=, weight_decay=, **hp)`` returns a torch optimizer.
``params`` is what torch optimizers take: parameters, or param groups (dicts) that may
carry their own ``weight_decay`` (the training loop passes groups: ``train.weight_decay_scope``).
If the class sets ``two_pass = True`` (the SAM family), the training loop calls
``optimizer.step(closure)`` after the first backward pass, where ``closure()`` recomputes the
loss and its gradients at the perturbed weights and returns the loss; the closure runs with
BatchNorm running statistics frozen, so they are updated once per step, not twice. Otherwise
the loop calls ``optimizer.step()``. The learning-rate schedule is applied by the loop to
``optimizer.param_groups`` of the returned object.

:func:`fused_kwargs` tells a plugin whether torch's fused optimizer step (one C++ loop over all
parameters instead of a dozen tensor operations per parameter issued from Python) can take its
parameters; the built-in plugins use it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from .base import Plugin

if TYPE_CHECKING:  # torch is imported by the plugins, not by the contract
    import torch
    from torch.optim.optimizer import ParamsT

__all__ = ["Optimizer", "fused_kwargs"]

FUSED_DEVICES = ("cpu", "cuda")


class Optimizer(Plugin):
    """Base class of optimizer plugins (entry-point group ``snt_search.optimizers``)."""

    kind: ClassVar[str] = "optimizer"
    two_pass: ClassVar[bool] = False

    @abstractmethod
    def build(
        self, params: ParamsT, *, lr: float, weight_decay: float, **hp: Any
    ) -> torch.optim.Optimizer:
        """Return the optimizer; see the module docstring for how it will be stepped."""


def fused_kwargs(params: Iterable[Any]) -> dict[str, bool]:
    """``{"fused": True}`` if torch's fused step takes every tensor in ``params``, else ``{}``.

    It does for dense floating-point tensors on CPU or CUDA, all on one device. Pass a list
    (an iterator would be used up). The fused step computes the same update as the default
    one (up to float rounding) and makes an Adam step about 3x faster on CPU; it also keeps
    the per-parameter cost of SNT's three small tensors per activation out of each step
    (``docs/benchmarks.md``, "Optimizer cost").
    """
    import torch

    tensors: list[torch.Tensor] = []
    for p in params:
        tensors.extend(p["params"] if isinstance(p, dict) else [p])
    devices = {t.device for t in tensors}
    ok = (
        len(devices) == 1
        and next(iter(devices)).type in FUSED_DEVICES
        and all(t.is_floating_point() and t.layout == torch.strided for t in tensors)
    )
    return {"fused": True} if ok else {}
