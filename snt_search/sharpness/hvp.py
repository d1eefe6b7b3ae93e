"""Hessian-vector products of the training loss w.r.t. all trainable parameters.

``H`` is the Hessian of ``L(w) = sum_b n_b * loss_fn(model(x_b; w), y_b) / sum_b n_b`` over the
fixed list of batches ``(x_b, y_b)`` (``n_b = len(x_b)``), i.e. of the mean loss over the
samples when ``loss_fn`` returns a per-batch mean (as ``torch.nn.functional.cross_entropy``
does). This is the dataset Hessian PyHessian (Yao et al. 2020) computes batch by batch.

Vectors are flat 1-D tensors of length ``dim`` (the number of trainable scalars) on the
parameters' device, in ``model.parameters()`` order; a flat layout keeps the Krylov methods
(Lanczos, power iteration, Hutchinson) to plain matrix algebra.

Backends:
    ``double_backward``: ``g = autograd.grad(L, w, create_graph=True)`` then
        ``autograd.grad(g, w, grad_outputs=v)`` (Pearlmutter's trick, PyHessian's method).
        When the first-order graphs of all batches fit the memory budget (see
        :mod:`.graph_cache`), ``g`` is computed once per batch and its graph kept, so each
        further product costs only the second backward pass (~1.4x faster; PyHessian does
        the same for a single batch). Reported as ``"double_backward+cache"``.
    ``forward_over_reverse``: ``torch.func.jvp`` of ``torch.func.grad`` of a
        ``functional_call`` of the model; often faster, but needs the model to be traceable by
        ``torch.func`` (no in-place ops on inputs that need grad, no ``.item()`` in forward).
    ``auto``: ``double_backward`` with the graph cache when it fits; otherwise time one
        product of each on (part of) the first batch, keep the faster one and remember the
        choice per (model class, device type); ``double_backward`` if ``torch.func`` fails.

On CPU, in eval mode, ``double_backward`` runs several batches of a product at once on
threads (:mod:`.batch_threads`). The model is used as is: call it in the mode you want (the
public API switches to eval mode).
Parameters' ``.grad`` are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .backend_choice import choose_backend, clear_backend_cache
from .batch_threads import map_shards, shard_count, sum_over_shards
from .func_hvp import forward_over_reverse
from .graph_cache import cache_budget_bytes, saved_bytes

__all__ = ["BACKENDS", "Batch", "HessianVectorProduct", "LossFn", "clear_backend_cache"]

Batch = tuple[Tensor, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]
BACKENDS = ("double_backward", "forward_over_reverse")

_log = logging.getLogger(__name__)
_TIMING_SAMPLES = 32  # backend timing uses at most this many samples of the first batch


class HessianVectorProduct:
    """Callable ``v -> H v`` for flat ``v``; counts the products in ``self.count``.

    Args:
        model: the network; its trainable parameters (``requires_grad``) span ``H``.
        batches: non-empty list of ``(x, y)``; moved once to the parameters' device.
        loss_fn: ``loss_fn(logits, y)`` returning a scalar mean loss over the batch.
        backend: one of ``BACKENDS`` or ``"auto"``.
        cache_graph: keep the first-order graphs between products (``double_backward`` and
            ``auto`` only): ``None`` when they fit the memory budget, ``True`` always,
            ``False`` never.
    """

    def __init__(
        self,
        model: nn.Module,
        batches: Sequence[Batch],
        loss_fn: LossFn,
        backend: str = "auto",
        cache_graph: bool | None = None,
    ) -> None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError(
                "the model has no trainable parameters (requires_grad=True): the Hessian is "
                "empty; unfreeze the parameters whose sharpness you want to measure"
            )
        if not batches:
            raise ValueError("batches is empty: pass at least one (x, y) batch")
        if backend not in (*BACKENDS, "auto"):
            raise ValueError(
                f"backend must be one of {(*BACKENDS, 'auto')}, got {backend!r}; "
                "use 'auto' to pick the faster one"
            )
        dtypes = {p.dtype for _, p in named}
        if len(dtypes) > 1:
            raise ValueError(
                f"trainable parameters must share one dtype, got {sorted(map(str, dtypes))}; "
                "cast the model (e.g. model.float()) before estimating sharpness"
            )
        self.model = model
        self.loss_fn = loss_fn
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.device = self.params[0].device
        self.dtype = self.params[0].dtype
        self.numels = [p.numel() for p in self.params]
        self.dim = sum(self.numels)
        self.batches = [_to_device(x, y, self.device) for x, y in batches]
        self.samples = sum(int(x.shape[0]) for x, _ in self.batches)
        self.count = 0
        self._graphs: list[tuple[list[int], list[Tensor]] | None] = [None] * len(self.batches)
        self.cached = False
        if backend in ("auto", "double_backward") and cache_graph is not False:
            self.cached = self._decide_cache(force=cache_graph is True)
            if self.cached:
                backend = "double_backward"
        if backend == "auto":
            backend = self._choose_backend()
        self.backend = backend + ("+cache" if self.cached else "")
        self._batch_hvp = {
            "double_backward": self._double_backward,
            "forward_over_reverse": self._forward_over_reverse,
        }[backend]

    def __call__(self, v: Tensor) -> Tensor:
        """Return ``H v`` (flat, same device/dtype as ``v``), averaged over all batches."""
        if v.shape != (self.dim,):
            raise ValueError(f"v must have shape ({self.dim},), got {tuple(v.shape)}")
        vs = self.unflatten(v)
        if self.cached:
            self._build_graphs()

        def shard(batch_ids: Sequence[int]) -> Tensor:
            out = torch.zeros(self.dim, device=self.device, dtype=self.dtype)
            out_views = self.unflatten(out)
            with torch.enable_grad():
                for i in batch_ids:
                    x, y = self.batches[i]
                    hv = self._batch_hvp(i, x, y, vs)
                    weight = float(x.shape[0]) / self.samples
                    for acc, h in zip(out_views, hv, strict=True):
                        if h is not None:
                            acc.add_(h.detach(), alpha=weight)
            return out

        out = self._sum(shard)
        self.count += 1
        return out.to(v.dtype)

    def gradient(self) -> Tensor:
        """Flat gradient of ``L`` (sample-weighted over the batches); not counted as a product.

        With the graph cache it builds and keeps every batch's first-order graph, so the
        following products reuse it and the gradient comes for free.
        """
        if self.cached:
            self._build_graphs()
            out = torch.zeros(self.dim, device=self.device, dtype=self.dtype)
            out_views = self.unflatten(out)
            for (x, _), first in zip(self.batches, self._graphs, strict=True):
                assert first is not None
                for i, g in zip(*first, strict=True):
                    out_views[i].add_(g.detach(), alpha=float(x.shape[0]) / self.samples)
            return out

        def shard(batch_ids: Sequence[int]) -> Tensor:
            out = torch.zeros(self.dim, device=self.device, dtype=self.dtype)
            out_views = self.unflatten(out)
            with torch.enable_grad():
                for b in batch_ids:
                    x, y = self.batches[b]
                    loss = self._loss(x, y, self.model(x))
                    grads = torch.autograd.grad(loss, self.params, allow_unused=True)
                    weight = float(x.shape[0]) / self.samples
                    for view, g in zip(out_views, grads, strict=True):
                        if g is not None:
                            view.add_(g, alpha=weight)
            return out

        return self._sum(shard)

    def _build_graphs(self) -> None:
        """Build the kept first-order graphs still missing, all at once.

        Several batches at once on CPU threads as in a product, as many as keep every shard
        busy; the rest (with two threads and two batches, the one ``_decide_cache`` did not
        build) on the calling thread with every intra-op thread, not on one shard thread while
        the others wait.
        """
        missing = [b for b, first in enumerate(self._graphs) if first is None]
        if not missing:
            return

        def build(batch_ids: Sequence[int]) -> None:
            with torch.enable_grad():
                for b in batch_ids:
                    self._graphs[b] = self._first_order(*self.batches[b])

        if self.model.training:  # forward passes update BatchNorm statistics: one thread
            build(missing)
            return
        k = shard_count(len(missing), self.device)
        even = len(missing) - len(missing) % k  # as many as keep every shard busy
        map_shards(build, missing[:even], self.device)
        if even < len(missing):
            build(missing[even:])  # the rest on the calling thread, every intra-op thread

    def _sum(self, shard: Callable[[Sequence[int]], Tensor]) -> Tensor:
        """Sum ``shard`` over the batches; on CPU several batches at once (double backward)."""
        if self.backend.startswith("forward_over_reverse") or self.model.training:
            # torch.func stays on the caller's thread; in train mode forward passes update
            # BatchNorm statistics, which threads would race on
            return shard(range(len(self.batches)))
        return sum_over_shards(shard, len(self.batches), self.device)

    def unflatten(self, v: Tensor) -> list[Tensor]:
        """Split flat ``v`` into views shaped like the trainable parameters."""
        return [
            c.view(p.shape).to(p.dtype)
            for c, p in zip(torch.split(v, self.numels), self.params, strict=True)
        ]

    def _loss(self, x: Tensor, y: Tensor, logits: Tensor) -> Tensor:
        loss = self.loss_fn(logits, y)
        if loss.dim() != 0:
            raise ValueError(
                f"loss_fn must return a scalar mean loss, got shape {tuple(loss.shape)}; "
                "use reduction='mean'"
            )
        return loss

    def _first_order(self, x: Tensor, y: Tensor) -> tuple[list[int], list[Tensor]]:
        """Gradients (with their graph) of the parameters whose Hessian block is non-zero."""
        loss = self._loss(x, y, self.model(x))
        grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        # A gradient that does not depend on the parameters has a zero Hessian block.
        idx = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        return idx, [grads[i] for i in idx]

    def _double_backward(
        self, b: int, x: Tensor, y: Tensor, vs: list[Tensor]
    ) -> list[Tensor | None]:
        first = self._graphs[b] if self.cached else None
        if first is None:
            first = self._first_order(x, y)
            if self.cached:
                self._graphs[b] = first
        idx, grads = first
        out: list[Tensor | None] = [None] * len(self.params)
        if not idx:
            return out
        hv = torch.autograd.grad(
            grads,
            [self.params[i] for i in idx],
            grad_outputs=[vs[i] for i in idx],
            retain_graph=self.cached,
            allow_unused=True,
        )
        for i, h in zip(idx, hv, strict=True):
            out[i] = h
        return out

    def _forward_over_reverse(
        self, b: int, x: Tensor, y: Tensor, vs: list[Tensor]
    ) -> list[Tensor | None]:
        hv = forward_over_reverse(
            self.model, self.names, self.params, lambda out: self._loss(x, y, out), x, vs
        )
        return list(hv)

    def _decide_cache(self, force: bool) -> bool:
        """Build batch 0's first-order graph, measure it, and keep it if all batches fit."""
        x, y = self.batches[0]
        with torch.enable_grad(), saved_bytes(self.params) as measured:
            first = self._first_order(x, y)
        needed = measured.total * self.samples / max(int(x.shape[0]), 1)
        fits = needed <= cache_budget_bytes(self.device)
        if fits or force:
            self._graphs[0] = first
        _log.debug("graph cache: %.0f MB needed, fits=%s, forced=%s", needed / 2**20, fits, force)
        return fits or force

    def _choose_backend(self) -> str:
        x, y = self.batches[0]
        x, y = x[:_TIMING_SAMPLES], y[:_TIMING_SAMPLES]
        v = torch.randn(self.dim, generator=torch.Generator().manual_seed(0)).to(
            self.device, self.dtype
        )
        vs = self.unflatten(v)
        with torch.enable_grad():
            return choose_backend(
                (type(self.model), self.device.type),
                {
                    "double_backward": lambda: self._double_backward(0, x, y, vs),
                    "forward_over_reverse": lambda: self._forward_over_reverse(0, x, y, vs),
                },
                type(self.model).__name__,
            )


def _to_device(x: Tensor, y: Tensor, device: torch.device) -> Batch:
    """Move a batch to ``device``; clone inference-mode tensors so autograd can save them."""
    x, y = x.to(device), y.to(device)
    if x.is_inference():
        x = x.clone()
    if y.is_inference():
        y = y.clone()
    return x, y
