"""``snt``: the paper's ARCH, pre-activation (Sec. 4.1) then LBiasPReLU (Sec. 4.2, Eq. 1).

Order matters: ``preact`` moves or adds parameter-free activations, then every activation,
the new ones included, becomes an LBiasPReLU with the channel count of the place it now sits.
A plain chain without residual branches (MobileNet-V1) has no branch to open; with
``preact="auto"`` (default) only the activations are swapped there, as in the paper's
MobileNet-V1 rows, a warning says so and the report shows ``"PreAct blocks": 0``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from torch import nn

from snt_search.specs import Param, PluginError, Transform, TransformNotApplicable, TransformReport

from .lbias_prelu import swap_activations
from .preact import SUPPORTED, apply_preact, supported_blocks

__all__ = ["SNT"]

_PREACT_MODES = ("auto", "require", "off")


class SNT(Transform):
    """SNT / ARCH of the paper: pre-activation blocks with learnable-bias PReLU (Eq. 1).

    Parameters (``defaults``):
        init_slope: initial negative slope beta of every LBiasPReLU (0.25).
        preact: ``"auto"`` rewrites the residual blocks ``preact`` supports and, for a model
            with none, only swaps activations (with a warning); ``"require"`` raises instead;
            ``"off"`` never rewrites blocks (same as the ``lbias_prelu`` transform).
    """

    defaults: ClassVar[dict[str, Param]] = {"init_slope": 0.25, "preact": "auto"}

    def apply(self, model: nn.Module, **params: Any) -> TransformReport:
        p = self.resolve_params(params)
        if p["preact"] not in _PREACT_MODES:
            raise PluginError(
                f"transform {self.name!r}: preact must be one of {', '.join(_PREACT_MODES)}, "
                f"got {p['preact']!r}."
            )
        blocks: dict[str, int] = {}
        if p["preact"] != "off":
            try:
                blocks = apply_preact(model)
            except TransformNotApplicable:
                if p["preact"] == "require" or supported_blocks(model):
                    raise
                warnings.warn(
                    f"snt: {type(model).__name__} has no residual block preact supports "
                    f"({SUPPORTED}); only the activations are swapped (Eq. 1). Pass "
                    f"preact='require' to make this an error or preact='off' to silence it.",
                    stacklevel=2,
                )
        replaced, added = swap_activations(model, init_slope=p["init_slope"])
        replaced = {**(blocks or {"PreAct blocks": 0}), **replaced}
        return TransformReport(self.name or "snt", replaced, added)
