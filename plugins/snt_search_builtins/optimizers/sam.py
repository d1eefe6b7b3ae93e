"""Sharpness-Aware Minimization (Foret et al. 2021, arXiv:2010.01412), the paper's "SAM",
and its adaptive (ASAM) and surrogate-gap-guided (GSAM) variants.

SAM minimises max_{||e|| <= rho} L(w + e): each step takes the gradient g at w, moves to
w + e with e = rho * g / ||g||, recomputes the gradient g_p there and lets the base optimizer
step from w with it. ASAM (Kwon et al. 2021, arXiv:2102.11600) scales the neighbourhood by |w|
elementwise, e = rho * w^2 g / ||w g||, so it is invariant to weight rescaling. GSAM (Zhuang et
al. 2022, arXiv:2203.08065) also steps against the part of g orthogonal to g_p, which lowers
the surrogate gap L(w + e) - L(w): the update is g_p - alpha * g_orth.

All three cost a second forward/backward pass (``two_pass = True``): the training loop calls
``step(closure)`` with a closure that runs with BatchNorm statistics frozen, so they are
updated once per step. Written here rather than taken from pytorch-optimizer so that the three
variants share one small implementation and the loop's closure contract (frozen BatchNorm).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from snt_search.specs import Optimizer, PluginError, Range
from snt_search.specs.optimizer import fused_kwargs

_BASES: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


class SAM(torch.optim.Optimizer):
    """Wraps ``base`` (already built on the same params); ``step(closure)`` does both passes."""

    def __init__(
        self,
        base: torch.optim.Optimizer,
        rho: float = 0.05,
        adaptive: bool = False,
        alpha: float = 0.0,
    ):
        if rho <= 0:
            raise PluginError(f"SAM: rho must be > 0, got {rho}; use a plain optimizer for rho = 0")
        if not 0.0 <= alpha <= 1.0:
            raise PluginError(f"GSAM: alpha must lie in [0, 1], got {alpha}")
        self.base = base
        self.alpha = alpha
        super().__init__(base.param_groups, {"rho": rho, "adaptive": adaptive})
        self.param_groups = base.param_groups  # one set of groups: lr schedules reach the base
        for group in self.param_groups:
            group.setdefault("rho", rho)
            group.setdefault("adaptive", adaptive)

    @torch.no_grad()
    def _perturb(self) -> None:
        grads = [
            ((p.abs() if g["adaptive"] else 1.0) * p.grad).norm(2)
            for g in self.param_groups
            for p in g["params"]
            if p.grad is not None
        ]
        norm = torch.stack(grads).norm(2) if grads else torch.tensor(0.0)
        for group in self.param_groups:
            scale = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                e = (p.square() if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e)
                self.state[p]["e"] = e
                if self.alpha:
                    self.state[p]["g"] = p.grad.clone()

    @torch.no_grad()
    def _gap_guidance(self) -> None:
        """GSAM: g_p <- g_p - alpha * (g - (g.g_p / |g_p|^2) g_p)."""
        pairs = [
            (p.grad, self.state[p].pop("g"))
            for g in self.param_groups
            for p in g["params"]
            if "g" in self.state[p] and p.grad is not None
        ]
        if not pairs:
            return
        dot = sum((gp * g).sum() for gp, g in pairs)
        norm2 = sum(gp.square().sum() for gp, _ in pairs)
        coef = dot / (norm2 + 1e-12)
        for gp, g in pairs:
            gp.sub_(self.alpha * (g - coef * gp))

    @torch.no_grad()
    def _restore(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                e = self.state[p].pop("e", None)
                if e is not None:
                    p.sub_(e)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is None:
            raise PluginError(
                "SAM.step needs a closure that recomputes the loss and its gradients "
                "(SAM takes two passes per step); call optimizer.step(closure)"
            )
        self._perturb()
        self.base.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = closure()
        if self.alpha:
            self._gap_guidance()
        self._restore()
        self.base.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)


def _build(
    plugin: Optimizer,
    params: ParamsT,
    lr: float,
    weight_decay: float,
    hp: dict[str, Any],
) -> SAM:
    p = plugin.resolve_params(hp)
    if p["base"] not in _BASES:
        raise PluginError(
            f"optimizer {plugin.name!r}: base must be one of {sorted(_BASES)}, got {p['base']!r}"
        )
    extra = {"momentum": p["momentum"]} if p["base"] == "sgd" else {}
    items: list[Any] = list(params)  # parameters or param groups
    extra.update(fused_kwargs(items))
    base = _BASES[p["base"]](items, lr=lr, weight_decay=weight_decay, **extra)
    return SAM(base, rho=p["rho"], adaptive=p.get("adaptive", False), alpha=p.get("alpha", 0.0))


class SAMPlugin(Optimizer):
    """SAM (Foret et al. 2021) around Adam/AdamW/SGD; rho is the neighbourhood radius."""

    two_pass = True
    defaults = {"rho": 0.05, "adaptive": False, "base": "adam", "momentum": 0.9}
    ranges = {"rho": Range(0.0, low_open=True), "momentum": Range(0.0, 1.0, high_open=True)}

    def build(
        self, params: ParamsT, *, lr: float, weight_decay: float, **hp: Any
    ) -> torch.optim.Optimizer:
        return _build(self, params, lr, weight_decay, hp)


class ASAMPlugin(SAMPlugin):
    """ASAM (Kwon et al. 2021): scale-invariant adaptive SAM; rho is larger than SAM's."""

    defaults = {"rho": 0.5, "adaptive": True, "base": "adam", "momentum": 0.9}


class GSAMPlugin(SAMPlugin):
    """GSAM (Zhuang et al. 2022): SAM that also lowers the surrogate gap (alpha)."""

    defaults = {"rho": 0.05, "alpha": 0.2, "adaptive": False, "base": "adam", "momentum": 0.9}
    ranges = {**SAMPlugin.ranges, "alpha": Range(0.0, 1.0)}
