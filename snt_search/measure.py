"""What a compressed model costs: stored bytes, non-zero parameters, forward latency.

:func:`measure_model` gives the metrics every trial records for its compressed model:

* ``model_bytes``: the size of its weights as :func:`snt_search.export.save_model` stores
  them (quantized weights as int8 codes + scales, everything else as is), without the
  config metadata, so it depends on the weights alone. Pruned zeros are stored densely:
  pruning lowers ``params``, not ``model_bytes``.
* ``params``: the number of non-zero parameters.
* ``param_reduction``: ``1 - params / n_params`` of the trained model (0 for a dense copy).
* ``latency_ms``: the median time of one forward pass of ``batch`` on the model's device,
  in eval mode without gradients, after ``warmup`` passes (CUDA is synchronized around
  each pass).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from .export.files import encoded_bytes

__all__ = ["encoded_bytes", "forward_latency_ms", "measure_model", "nonzero_params"]


def nonzero_params(model: nn.Module) -> int:
    """Parameters of ``model`` that are not exactly zero."""
    return sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())


@torch.no_grad()
def forward_latency_ms(
    model: nn.Module, batch: torch.Tensor, *, warmup: int = 2, repeats: int = 5
) -> float:
    """Median milliseconds of ``model(batch)`` over ``repeats`` passes after ``warmup``."""
    was_training = model.training
    model.eval()
    sync = batch.device.type == "cuda"
    times = []
    try:
        for i in range(warmup + repeats):
            if sync:
                torch.cuda.synchronize(batch.device)
            start = time.perf_counter()
            model(batch)
            if sync:
                torch.cuda.synchronize(batch.device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    finally:
        model.train(was_training)
    return statistics.median(times)


def measure_model(model: nn.Module, batch: torch.Tensor, dense_params: int) -> dict[str, float]:
    """``model_bytes``, ``params``, ``param_reduction`` and ``latency_ms`` (module docstring)."""
    params = nonzero_params(model)
    return {
        "model_bytes": float(encoded_bytes(model)),
        "params": float(params),
        "param_reduction": 1.0 - params / dense_params if dense_params else 0.0,
        "latency_ms": forward_latency_ms(model, batch),
    }
