"""The two public estimators: ``lambda_max`` (top Hessian eigenvalue) and the Hessian trace.

SNT (Heo et al.) measures the sharpness of a trained network by ``lambda_max``, the largest
eigenvalue of the Hessian of the training loss w.r.t. all weights, computed as in PyHessian
(Yao et al. 2020). These functions wrap the operator (:mod:`.hvp`) and the eigen-solvers
(:mod:`.lanczos`, :mod:`.power`, :mod:`.trace`, :mod:`.reference`) with the contract every
trial relies on:

* the model is in eval mode during the estimate (dropout off, BatchNorm uses running
  statistics, as PyHessian does) and every submodule's previous mode is restored afterwards,
  also when an error is raised;
* parameters' ``.grad`` are left exactly as they were;
* batches are moved to the device of the model's parameters (CPU or CUDA);
* non-convergence is reported with ``converged=False`` and never raised or hidden; a negative
  dominant eigenvalue is returned as is; a NaN ``lambda_max`` always has ``converged=False``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch.nn.functional as F
from torch import nn

from .hvp import Batch, HessianVectorProduct, LossFn
from .lanczos import lanczos
from .power import power_iteration
from .reference import pyhessian_eigenvalues
from .result import SharpnessResult, TraceResult
from .trace import hutchinson

__all__ = ["METHODS", "STARTS", "estimate_lambda_max", "estimate_trace", "eval_mode"]

METHODS = ("lanczos", "power", "pyhessian")
STARTS = ("gradient", "random")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode; restore each submodule's ``training`` flag on exit."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def estimate_lambda_max(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    loss_fn: LossFn = F.cross_entropy,
    method: str = "lanczos",
    top_k: int = 1,
    max_iter: int = 100,
    tol: float = 1e-3,
    seed: int = 0,
    backend: str = "auto",
    cache_graph: bool | None = None,
    start: str = "gradient",
) -> SharpnessResult:
    """Estimate the top ``top_k`` eigenvalues of the training-loss Hessian.

    Args:
        model: the network; its trainable parameters span the Hessian.
        batches: ``(x, y)`` pairs; the loss is their sample-weighted mean (see
            :func:`draw_batches` for a fixed seeded subset).
        loss_fn: ``loss_fn(logits, y)`` -> scalar mean loss.
        method: ``"lanczos"`` (default; algebraically largest eigenvalues, fewest products),
            ``"power"`` (PyHessian-style power iteration; largest magnitude) or
            ``"pyhessian"`` (PyHessian itself, for comparison; ``pip install pyhessian``).
        top_k: number of eigenvalues.
        max_iter: Lanczos steps in total; power steps per eigenvalue (PyHessian's ``maxIter``).
        tol: relative tolerance of the stopping rule of the method.
        seed: seed of the random start vector(s).
        backend: Hessian-vector-product backend (``"auto"``, ``"double_backward"``,
            ``"forward_over_reverse"``); ignored by ``"pyhessian"``.
        cache_graph: keep first-order graphs between products (``None``: when they fit in
            half the free memory; see :mod:`.hvp`); ignored by ``"pyhessian"``.
        start: ``"gradient"`` (default) tilts the seeded random start vector towards the loss
            gradient, which lies mostly in the top Hessian subspace (see :mod:`.start`); it
            costs one forward+backward pass, none with the graph cache. ``"random"``: the
            seeded Gaussian vector alone (PyHessian's choice). Ignored by ``"pyhessian"``.

    Returns:
        a :class:`SharpnessResult`; check ``converged`` and ``relative_residual``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}; 'lanczos' is fastest")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    batches = list(batches)
    t0 = time.perf_counter()
    with eval_mode(model):
        if method == "pyhessian":
            hvp = HessianVectorProduct(model, batches, loss_fn, "double_backward", False)
        else:
            hvp = HessianVectorProduct(model, batches, loss_fn, backend, cache_graph)
        if method == "pyhessian":
            ref = pyhessian_eigenvalues(
                model, batches, loss_fn, top_k=top_k, max_iter=max_iter, tol=tol, seed=seed
            )
            values, vectors = ref.eigenvalues, ref.eigenvectors.to(hvp.device)
            iterations = hvp_count = sum(ref.steps)
            converged = all(s < max_iter for s in ref.steps)
            # PyHessian reports no residual: one extra product per pair (not in hvp_count).
            residual = max(
                float((hvp(v) - lam * v).norm()) / max(abs(lam), 1e-30)
                for lam, v in zip(values, vectors, strict=True)
            )
            error = residual  # no gap estimate
            used_backend = "pyhessian"
        else:
            solver = lanczos if method == "lanczos" else power_iteration
            out = solver(
                hvp,
                hvp.dim,
                top_k=top_k,
                max_iter=max_iter,
                tol=tol,
                seed=seed,
                device=hvp.device,
                dtype=hvp.dtype,
                start=hvp.gradient() if start == "gradient" else None,
            )
            values, iterations, hvp_count = out.eigenvalues, out.iterations, hvp.count
            converged, residual = out.converged, out.relative_residual
            error = out.error_estimate
            used_backend = hvp.backend
    finite = all(math.isfinite(v) for v in values)
    return SharpnessResult(
        lambda_max=float(values[0]),
        eigenvalues=tuple(float(v) for v in values),
        method=method,
        backend=used_backend,
        iterations=int(iterations),
        hvp_count=int(hvp_count),
        relative_residual=float(residual) if finite else math.nan,
        error_estimate=float(error) if finite else math.nan,
        converged=bool(converged and finite),
        samples=hvp.samples,
        seed=seed,
        wall_time_s=time.perf_counter() - t0,
    )


def estimate_trace(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    loss_fn: LossFn = F.cross_entropy,
    probes: int = 100,
    seed: int = 0,
    backend: str = "auto",
    cache_graph: bool | None = None,
) -> TraceResult:
    """Estimate ``tr(H)`` of the training-loss Hessian with Hutchinson's method.

    Same contract (eval mode, ``.grad`` untouched, device handling) and arguments as
    :func:`estimate_lambda_max`; ``probes`` Rademacher probes cost one product each and the
    standard error shrinks as ``1 / sqrt(probes)``.
    """
    batches = list(batches)
    t0 = time.perf_counter()
    with eval_mode(model):
        hvp = HessianVectorProduct(model, batches, loss_fn, backend, cache_graph)
        mean, stderr = hutchinson(
            hvp, hvp.dim, probes=probes, seed=seed, device=hvp.device, dtype=hvp.dtype
        )
    return TraceResult(
        trace=mean,
        stderr=stderr,
        probes=probes,
        samples=hvp.samples,
        seed=seed,
        wall_time_s=time.perf_counter() - t0,
    )
