"""The ``forward_over_reverse`` backend: a Hessian-vector product as ``torch.func.jvp`` of
``torch.func.grad`` over a ``functional_call`` of the model (Pearlmutter's R-operator applied
forward to the gradient). Needs a model ``torch.func`` can trace; :mod:`.hvp` falls back to
``double_backward`` where it cannot."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn
from torch.func import functional_call, grad, jvp

__all__ = ["forward_over_reverse"]


def forward_over_reverse(
    model: nn.Module,
    names: Sequence[str],
    params: Sequence[Tensor],
    loss_of_logits: Callable[[Tensor], Tensor],
    x: Tensor,
    vs: Sequence[Tensor],
) -> list[Tensor]:
    """``H v`` of ``loss_of_logits(model(x))`` w.r.t. the parameters ``names`` (values
    ``params``), ``v`` given per parameter as ``vs``; other parameters and buffers are held
    fixed."""
    trainable = set(names)
    fixed: dict[str, Tensor] = {
        n: t.detach() for n, t in model.named_parameters() if n not in trainable
    }
    fixed.update(dict(model.named_buffers()))

    def loss_of(ps: tuple[Tensor, ...]) -> Tensor:
        state = dict(zip(names, ps, strict=True))
        state.update(fixed)
        return loss_of_logits(functional_call(model, state, (x,)))

    primals = tuple(p.detach() for p in params)
    return list(jvp(grad(loss_of), (primals,), (tuple(vs),))[1])
