"""Optimizer plugins: build a ``torch.optim.Optimizer`` and declare how it must be stepped.

Contract: ``Optimizer.build(params, lr=, weight_decay=, **hp)`` returns a torch optimizer.
If the class sets ``two_pass = True`` (the SAM family), the training loop calls
``optimizer.step(closure)`` after the first backward pass, where ``closure()`` recomputes the
loss and its gradients at the perturbed weights and returns the loss; the closure runs with
BatchNorm running statistics frozen, so they are updated once per step, not twice. Otherwise
the loop calls ``optimizer.step()``. The learning-rate schedule is applied by the loop to
``optimizer.param_groups`` of the returned object.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

import torch

from .base import Plugin

__all__ = ["Optimizer"]


class Optimizer(Plugin):
    """Base class of optimizer plugins (entry-point group ``snt_search.optimizers``)."""

    kind: ClassVar[str] = "optimizer"
    two_pass: ClassVar[bool] = False

    @abstractmethod
    def build(
        self, params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float, **hp: Any
    ) -> torch.optim.Optimizer:
        """Return the optimizer; see the module docstring for how it will be stepped."""
