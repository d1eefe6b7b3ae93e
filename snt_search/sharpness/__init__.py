"""Loss-sharpness estimation: ``lambda_max`` and the trace of the training-loss Hessian.

SNT (Heo et al., "SNT: Sharpness-Minimizing Network Transformation for Fast
Compression-friendly Pretraining") uses ``lambda_max``, the top eigenvalue of the Hessian of
the training loss w.r.t. all weights, as its sharpness measure and computes it with PyHessian
(Yao et al. 2020, "PyHessian: Neural Networks Through the Lens of the Hessian"). This package
estimates the same quantity, by default with Lanczos (fewer Hessian-vector products than
PyHessian's power iteration), and can run PyHessian itself for comparison.

Example::

    batches = draw_batches(x, y, samples=4096, batch_size=256, seed=0)
    result = estimate_lambda_max(model, batches)
    result.lambda_max, result.converged, result.as_dict()

See ``docs/sharpness.md``.
"""

from __future__ import annotations

from .data import draw_batches
from .estimate import METHODS, STARTS, estimate_lambda_max, estimate_trace
from .hvp import BACKENDS, HessianVectorProduct, clear_backend_cache
from .result import SharpnessResult, TraceResult
from .trust import off_front_reason

__all__ = [
    "BACKENDS",
    "METHODS",
    "STARTS",
    "HessianVectorProduct",
    "SharpnessResult",
    "TraceResult",
    "clear_backend_cache",
    "draw_batches",
    "estimate_lambda_max",
    "estimate_trace",
    "off_front_reason",
]
