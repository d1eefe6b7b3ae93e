"""PyHessian (Yao et al. 2020, https://github.com/amirgholami/PyHessian) as a reference method.

``method="pyhessian"`` runs ``pyhessian.hessian(model, criterion, data=... | dataloader=...,
cuda=...).eigenvalues(maxIter, tol, top_n)`` on the same batches and loss so users can compare
against the tool most papers (including SNT) report ``lambda_max`` with. PyHessian is imported
lazily (``pip install pyhessian``).

PyHessian calls ``loss.backward(create_graph=True)``, which writes ``.grad``; the caller's
gradients are restored afterwards. Its random start vectors come from the global torch RNG,
which is seeded with ``seed`` inside ``torch.random.fork_rng`` so the caller's RNG state is
untouched. PyHessian reports neither iteration counts nor convergence, so its module-level
``orthnormal`` (called exactly once per power step, with the eigenvectors found so far) is
wrapped for the duration of the call to count steps per eigenvalue; the wrap is guarded by a
lock. ``on_step`` sees each power step's estimate (the Rayleigh quotient PyHessian compares
with ``tol``) as it is made, e.g. to time PyHessian to a given accuracy (``bench/sharpness.py
--matched``): its product (``dataloader_hv_product`` on the instance, or the module-level
``hessian_vector_product`` for one batch) is wrapped the same way; a one-batch estimate costs
one extra dot product.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .hvp import Batch, LossFn

__all__ = ["PyHessianOutput", "pyhessian_eigenvalues"]

_LOCK = threading.Lock()


@dataclass(frozen=True)
class PyHessianOutput:
    """PyHessian's eigenvalues, its eigenvectors (rows, flat) and power steps per eigenvalue."""

    eigenvalues: tuple[float, ...]
    eigenvectors: Tensor
    steps: tuple[int, ...]


def pyhessian_eigenvalues(
    model: nn.Module,
    batches: Sequence[Batch],
    loss_fn: LossFn,
    *,
    top_k: int,
    max_iter: int,
    tol: float,
    seed: int,
    on_step: Callable[[float], None] | None = None,
) -> PyHessianOutput:
    """Run PyHessian's power iteration; one batch uses ``data=``, several ``dataloader=``.

    ``on_step(estimate)`` is called after every power step; an exception raised from it stops
    PyHessian and propagates, with the wraps and the parameters' ``.grad`` restored.
    """
    try:
        hessian_module: Any = importlib.import_module("pyhessian.hessian")
    except ImportError as exc:
        raise ImportError(
            "method='pyhessian' needs PyHessian, which is not installed; "
            "run `pip install pyhessian` (or `pip install 'snt-search[hessian]'`), "
            "or use method='lanczos'"
        ) from exc
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters; PyHessian needs some")
    device = params[0].device
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"PyHessian runs on 'cpu' or 'cuda' only, the model is on {device}")
    cuda = device.type == "cuda"
    moved = [(x.to(device), y.to(device)) for x, y in batches]
    saved = [p.grad for p in params]
    steps: dict[int, int] = {}
    fork = (
        [device.index if device.index is not None else torch.cuda.current_device()] if cuda else []
    )
    with _LOCK:  # the module-level wraps below: one call at a time, originals read under it
        original = hessian_module.orthnormal
        original_hvp = hessian_module.hessian_vector_product

        def counting_orthnormal(w: Any, v_list: list[Any]) -> Any:
            steps[len(v_list)] = steps.get(len(v_list), 0) + 1
            return original(w, v_list)

        def reporting_hvp(grads: Any, params_: Any, v: Any) -> Any:  # one batch
            hv = original_hvp(grads, params_, v)
            if on_step is not None:
                on_step(float(hessian_module.group_product(hv, v)))
            return hv

        try:
            with (
                torch.random.fork_rng(devices=fork),
                torch.enable_grad(),
                warnings.catch_warnings(),
            ):
                # PyHessian's backward(create_graph=True) warns of a grad cycle; we reset .grad.
                warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph")
                torch.manual_seed(seed)
                hessian_module.orthnormal = counting_orthnormal
                hessian_module.hessian_vector_product = reporting_hvp
                if len(moved) == 1:
                    h = hessian_module.hessian(model, loss_fn, data=moved[0], cuda=cuda)
                else:
                    h = hessian_module.hessian(model, loss_fn, dataloader=moved, cuda=cuda)
                    if on_step is not None:
                        h.dataloader_hv_product = _reporting(h.dataloader_hv_product, on_step)
                values, vectors = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=top_k)
                del h
        finally:
            hessian_module.orthnormal = original
            hessian_module.hessian_vector_product = original_hvp
            for p, g in zip(params, saved, strict=True):
                p.grad = g
    flat = torch.stack([torch.cat([t.detach().reshape(-1) for t in vec]) for vec in vectors])
    return PyHessianOutput(
        eigenvalues=tuple(float(v) for v in values),
        eigenvectors=flat.to(params[0].dtype),
        steps=tuple(steps.get(i, 0) for i in range(top_k)),
    )


def _reporting(
    product: Callable[[Any], tuple[float, Any]], on_step: Callable[[float], None]
) -> Callable[[Any], tuple[float, Any]]:
    """PyHessian's ``dataloader_hv_product`` (returns ``(estimate, Hv)``), reporting each."""

    def wrapped(v: Any) -> tuple[float, Any]:
        estimate, hv = product(v)
        on_step(float(estimate))
        return estimate, hv

    return wrapped
