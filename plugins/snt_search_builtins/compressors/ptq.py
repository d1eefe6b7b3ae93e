"""Post-training quantization (simulated): W4 weight-only with a short fine-tune, or static WxAy.

SNT paper, Sec. 5.2.1 "Post-Training Quantization" and Table 3 (PTQ rows), Table 2
("A8W8 Quantization"):

* **weight-only** (``activation_bits=0``, the default; Table 3 ResNet-20 "4/fp32"): weights of
  the Linear/Conv layers are fake-quantized to ``weight_bits`` (symmetric, per output channel)
  and the model is fine-tuned for ``finetune_epochs`` (paper: one epoch) through a
  straight-through estimator, the fake-quant staying in every forward pass while training.
* **static W/A** (``activation_bits>0``; Table 3 Mixer-S / MobileNet-V1 "8/8", Table 2 A8W8):
  in addition, the input of every quantized layer is fake-quantized per tensor (affine) with
  ranges calibrated by a min/max observer on ``calibration_batches`` batches of
  ``context.calibration`` (``torch.ao.quantization.FakeQuantize``). Calibration runs after
  the optional fine-tuning, so the ranges match the final weights. For the paper's pure PTQ
  W8A8 use ``weight_bits=8, activation_bits=8, finetune_epochs=0`` (:data:`PRESETS`).

Quantization is simulated (float32 on the integer grid), see :mod:`snt_search.compression.quant`.
The report gives the bit widths *measured* on the result: the number of distinct values per
weight channel and per layer input, as bits.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.ao.quantization import FakeQuantize, MinMaxObserver

from snt_search.compression import prunable_weights
from snt_search.compression.quant import (
    attach_input_quantizers,
    calibrate,
    check_bits,
    freeze_weights,
    measure_activation_bits,
    measure_weight_bits,
    quantize_weights,
)
from snt_search.specs import (
    CompressionContext,
    CompressionReport,
    Compressor,
    Param,
    PluginError,
    Range,
)

__all__ = ["PRESETS", "PostTrainingQuantization"]

PRESETS: dict[str, dict[str, Param]] = {
    "table3_w4": {"weight_bits": 4, "activation_bits": 0, "finetune_epochs": 1},
    "table2_w8a8": {"weight_bits": 8, "activation_bits": 8, "finetune_epochs": 0},
}


class PostTrainingQuantization(Compressor):
    """Simulated PTQ: W4 + 1 epoch fine-tune, or static W8A8 calibrated (Tables 2-3)."""

    metrics: ClassVar[dict[str, str]] = {
        "weight_bits": "minimize"
    }  # report keys usable as objectives
    defaults: ClassVar[dict[str, Param]] = {
        "weight_bits": 4,  # 2..8
        "weight_granularity": "channel",  # "channel" (per output channel) | "tensor"
        "activation_bits": 0,  # 0 = float activations (weight-only); 2..8 = static per tensor
        "calibration_batches": 8,  # batches of context.calibration for activation ranges
        "finetune_epochs": 1,  # STE fine-tuning epochs after quantizing (paper: 1 for W4)
        "skip_first_last": False,  # keep the first and last Linear/Conv layer in float
    }
    ranges: ClassVar[dict[str, Range]] = {
        "weight_bits": Range(2, 8),
        "activation_bits": Range(0, 8),  # 0 or 2..8
        "calibration_batches": Range(1),
        "finetune_epochs": Range(0),
    }

    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        """Quantize ``model`` in place (fake-quant); report measured bit widths."""
        p = self.resolve_params(params)
        wbits, abits, epochs = (
            int(p["weight_bits"]),
            int(p["activation_bits"]),
            int(p["finetune_epochs"]),
        )
        check_bits("weight_bits", wbits)
        if abits:
            check_bits("activation_bits", abits)
        if epochs > 0 and context.finetune is None:
            raise PluginError(
                f"compressor {self.name!r} fine-tunes for finetune_epochs={epochs}, but the "
                "CompressionContext has finetune=None. Fix: give the context a "
                "finetune(model, epochs) callback, or set finetune_epochs=0."
            )
        targets = prunable_weights(model, skip_first_last=bool(p["skip_first_last"]))
        granularity = str(p["weight_granularity"])
        rel_error = quantize_weights(targets, wbits, granularity)
        try:
            if epochs > 0 and context.finetune is not None:
                context.finetune(model, epochs)
        finally:
            freeze_weights(targets)
        if abits:  # calibrated last, so the ranges match the final (fine-tuned) weights
            quantizers = attach_input_quantizers(targets, lambda: _static_quantizer(abits))
            for q in quantizers:
                q.disable_fake_quant()
                q.enable_observer()
            used = calibrate(model, context.calibration, int(p["calibration_batches"]))
            for q in quantizers:
                q.disable_observer()
                q.enable_fake_quant()
        metrics = {
            "weight_bits": measure_weight_bits(targets, granularity),
            "activation_bits": 32.0,
            "quantized_layers": float(len(targets)),
            "weight_rel_error": rel_error,
            "finetune_epochs": float(max(epochs, 0)),
        }
        if abits:
            x = context.calibration[0][0]
            metrics["activation_bits"] = measure_activation_bits(model, targets, x)
            metrics["calibration_batches"] = float(used)
        return CompressionReport(self.name, metrics)

    def restore(self, model: nn.Module, **params: Any) -> None:
        """Re-attach the calibrated input quantizers (``activation_bits > 0``); weights are
        stored quantized as plain tensors, so they need nothing."""
        p = self.resolve_params(params)
        abits = int(p["activation_bits"])
        if not abits:
            return
        targets = prunable_weights(model, skip_first_last=bool(p["skip_first_last"]))
        for q in attach_input_quantizers(targets, lambda: _static_quantizer(abits)):
            q.disable_observer()
            q.enable_fake_quant()


def _static_quantizer(bits: int) -> FakeQuantize:
    """Per-tensor affine fake-quant with a min/max observer (static calibration)."""
    return FakeQuantize(
        observer=MinMaxObserver,
        quant_min=0,
        quant_max=2**bits - 1,
        dtype=torch.quint8,
        qscheme=torch.per_tensor_affine,
    )
