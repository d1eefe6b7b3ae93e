"""Quantization-aware training W4A4 with two-sided PACT activation clipping.

SNT paper, Sec. 2.1.2 (PACT [7] as the QAT baseline) and Sec. 5.2.1 / Table 3 (QAT rows,
"4/4"): weights of the Linear/Conv layers are fake-quantized to ``weight_bits`` (symmetric,
per output channel) and the input of each of those layers to ``activation_bits`` on a
learnable clipping range; the model is then trained for ``finetune_epochs`` epochs with
``context.finetune`` (the paper trains fully; set the epochs in the study space), gradients
through straight-through estimators.

SNT models: the learnable-bias PReLU (Eq. 1) makes activations negative, so the clipping is
two-sided (:class:`snt_search.compression.pact.TwoSidedPACT`): a learnable lower bound besides
PACT's upper ``alpha``, both initialized from the calibration min/max. ``two_sided=False`` is
the original PACT (lower bound fixed at 0), right for ReLU networks only.

By default the first and last layer stay in float (``skip_first_last=True``), as in PACT.
Quantization is simulated (float32 on the integer grid); weights are stored quantized at the
end, the activation quantizers stay attached (see :mod:`snt_search.compression.quant`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from snt_search.compression import prunable_weights
from snt_search.compression.pact import TwoSidedPACT
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

__all__ = ["QuantizationAwareTraining"]


class QuantizationAwareTraining(Compressor):
    """W4A4 quantization-aware training with two-sided PACT clipping (Table 3, QAT)."""

    metrics: ClassVar[dict[str, str]] = {
        "weight_bits": "minimize",
        "activation_bits": "minimize",
    }  # report keys usable as objectives
    defaults: ClassVar[dict[str, Param]] = {
        "weight_bits": 4,  # 2..8
        "weight_granularity": "channel",  # "channel" | "tensor"
        "activation_bits": 4,  # 2..8, per tensor on a learnable range
        "two_sided": True,  # learn the lower clipping bound too (needed for SNT, Eq. 1)
        "calibration_batches": 8,  # batches of context.calibration to initialize the ranges
        "finetune_epochs": 1,  # quantization-aware training epochs
        "skip_first_last": True,  # keep the first and last Linear/Conv layer in float (PACT)
    }
    ranges: ClassVar[dict[str, Range]] = {
        "weight_bits": Range(2, 8),
        "activation_bits": Range(2, 8),
        "calibration_batches": Range(1),
        "finetune_epochs": Range(1),
    }

    def compress(
        self, model: nn.Module, context: CompressionContext, **params: Any
    ) -> CompressionReport:
        """Quantize ``model`` in place and train it quantized; report measured bit widths."""
        p = self.resolve_params(params)
        wbits, abits, epochs = (
            int(p["weight_bits"]),
            int(p["activation_bits"]),
            int(p["finetune_epochs"]),
        )
        check_bits("weight_bits", wbits)
        check_bits("activation_bits", abits)
        if context.finetune is None or epochs < 1:
            raise PluginError(
                f"compressor {self.name!r} trains the quantized model and needs a "
                f"finetune(model, epochs) callback and finetune_epochs >= 1; got "
                f"finetune={context.finetune!r}, finetune_epochs={epochs}. Fix the context or "
                "the parameter, or use 'ptq' to quantize without training."
            )
        targets = prunable_weights(model, skip_first_last=bool(p["skip_first_last"]))
        granularity = str(p["weight_granularity"])
        rel_error = quantize_weights(targets, wbits, granularity)
        two_sided = bool(p["two_sided"])
        quantizers = attach_input_quantizers(targets, lambda: TwoSidedPACT(abits, two_sided))
        for q in quantizers:
            q.start_observing()
        used = calibrate(model, context.calibration, int(p["calibration_batches"]))
        for q in quantizers:
            q.stop_observing()
        try:
            context.finetune(model, epochs)
        finally:
            freeze_weights(targets)
        lowers = [float(q.lower.detach()) for q in quantizers]
        return CompressionReport(
            self.name,
            {
                "weight_bits": measure_weight_bits(targets, granularity),
                "activation_bits": measure_activation_bits(
                    model, targets, context.calibration[0][0]
                ),
                "quantized_layers": float(len(targets)),
                "weight_rel_error": rel_error,
                "negative_clip_layers": float(sum(low < 0 for low in lowers)),
                "calibration_batches": float(used),
                "finetune_epochs": float(epochs),
            },
        )

    def restore(self, model: nn.Module, **params: Any) -> None:
        """Re-attach the PACT input quantizers; their learned ranges come with the state dict."""
        p = self.resolve_params(params)
        abits, two_sided = int(p["activation_bits"]), bool(p["two_sided"])
        targets = prunable_weights(model, skip_first_last=bool(p["skip_first_last"]))
        attach_input_quantizers(targets, lambda: TwoSidedPACT(abits, two_sided))
