"""What a compressed model costs: stored bytes, non-zero parameters, forward latency."""

from __future__ import annotations

import torch
from torch import nn

from snt_search.compression.quant import fake_quant_weight
from snt_search.measure import encoded_bytes, forward_latency_ms, measure_model, nonzero_params


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64, bias=False), nn.ReLU(), nn.Linear(64, 10))


def test_weights_on_an_integer_grid_are_counted_as_int8_codes() -> None:
    model = _model()
    dense = encoded_bytes(model)
    with torch.no_grad():  # what ptq leaves: 4-bit codes x a scale per output channel
        model[0].weight.copy_(fake_quant_weight(model[0].weight, 4))
    coded = encoded_bytes(model)
    assert coded < dense - 2.5 * 64 * 64  # 64x64 float32 weights became about a byte each


def test_tied_weights_are_measured_like_save_model_stores_them() -> None:
    model = _model()
    model.append(nn.Linear(64, 64, bias=False))
    model[3].weight = model[0].weight  # tied: safetensors refuses shared storage as is
    assert encoded_bytes(model) > encoded_bytes(_model())


def test_params_count_non_zeros_and_the_reduction_follows() -> None:
    model = _model()
    total = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        model[0].weight[:32] = 0
    assert nonzero_params(model) == total - 32 * 64
    m = measure_model(model, torch.randn(8, 64), total)
    assert m["params"] == total - 32 * 64
    assert m["param_reduction"] == 1 - m["params"] / total
    assert m["model_bytes"] == encoded_bytes(model) and m["latency_ms"] > 0


def test_latency_leaves_the_models_mode_and_grads_alone() -> None:
    model = _model().train()
    x = torch.randn(4, 64)
    assert forward_latency_ms(model, x, warmup=1, repeats=3) > 0
    assert model.training and all(p.grad is None for p in model.parameters())
