"""Unstructured magnitude pruning on the weights of Linear and Conv layers.

The paper benchmarks unstructured weight pruning, one-shot and iterative (IMP), as its pruning
baselines (SNT paper, Sec. 2.1.1 and 5.2.2, Fig. 5; Table 2 "Weight Pruning (50% Sparsity)").
These helpers wrap ``torch.nn.utils.prune`` and fix one semantics for every caller:

* **A target sparsity is absolute**: it is the fraction of zeros the pruned tensors hold
  afterwards, and zeros already there count. Pruning a 50%-sparse model "to 50%" removes
  nothing more; pruning it "to 70%" removes 20% more of the weights. A live
  ``torch.nn.utils.prune`` reparametrization (``weight_orig`` + ``weight_mask``, e.g. from an
  interrupted IMP run) is made permanent first, because pruning on top of it would otherwise
  apply the amount to the *remaining* weights (relative semantics).
* Weights can't be un-pruned: when a tensor is already sparser than the target, it stays so
  and the caller reports the measured, higher sparsity (see :func:`measure_sparsity`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from snt_search.specs import PluginError

__all__ = [
    "PRUNABLE_TYPES",
    "SCHEDULES",
    "SCOPES",
    "PruneTarget",
    "check_sparsity",
    "make_permanent",
    "measure_sparsity",
    "prunable_weights",
    "prune_to",
    "sparsity_schedule",
]

PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)
SCOPES = ("global", "layer")
SCHEDULES = ("exponential", "cubic")

PruneTarget = tuple[nn.Module, str]


def prunable_weights(model: nn.Module, skip_first_last: bool = False) -> list[PruneTarget]:
    """The ``(module, "weight")`` pairs of every Linear and Conv layer, in registration order.

    ``skip_first_last`` leaves out the first and the last of them (for a timm model usually
    the patch/stem embedding and the classifier head), a common policy because those layers
    are small and sensitive. A weight shared by several modules is listed once.
    """
    targets: list[PruneTarget] = []
    seen: set[int] = set()
    for module in model.modules():
        if not isinstance(module, PRUNABLE_TYPES):
            continue
        weight = _current_weight(module)
        if weight is None or id(weight) in seen:
            continue
        seen.add(id(weight))
        targets.append((module, "weight"))
    if skip_first_last:
        targets = targets[1:-1]
    if not targets:
        policy = " after skipping the first and last layer" if skip_first_last else ""
        raise PluginError(
            f"this compressor needs Linear or Conv layers; {type(model).__name__} has none"
            f"{policy}. Fix: use a model with such layers or set skip_first_last=false."
        )
    return targets


def make_permanent(targets: Sequence[PruneTarget]) -> None:
    """Fold any live pruning reparametrization of ``targets`` into a plain ``weight``."""
    for module, name in targets:
        if prune.is_pruned(module) and hasattr(module, f"{name}_orig"):
            prune.remove(module, name)


def prune_to(targets: Sequence[PruneTarget], sparsity: float, scope: str = "global") -> None:
    """Prune ``targets`` by weight magnitude to an absolute ``sparsity``, leaving masks live.

    ``scope="global"`` ranks all weights together (layers end up with different
    sparsities); ``"layer"`` prunes every tensor to ``sparsity`` on its own. The masks stay
    attached as ``torch.nn.utils.prune`` forward pre-hooks, so fine-tuning keeps pruned weights
    at zero; call :func:`make_permanent` to drop them.
    """
    check_sparsity(sparsity)
    if scope not in SCOPES:
        raise PluginError(
            f"pruning scope must be one of {SCOPES}, got {scope!r}. Fix the 'scope' parameter."
        )
    make_permanent(targets)
    if scope == "global":
        prune.global_unstructured(
            list(targets), pruning_method=prune.L1Unstructured, amount=float(sparsity)
        )
    else:
        for module, name in targets:
            prune.l1_unstructured(module, name, amount=float(sparsity))


def check_sparsity(sparsity: float) -> None:
    """Reject a sparsity outside ``[0, 1)`` (1.0 would zero every weight)."""
    if not 0.0 <= sparsity < 1.0:
        raise PluginError(
            f"sparsity is the fraction of weights set to zero and must be in [0, 1), got "
            f"{sparsity!r}. Fix: e.g. sparsity=0.5 for the paper's 50% (Table 2)."
        )


def sparsity_schedule(
    final: float, steps: int, schedule: str = "exponential", initial: float = 0.0
) -> list[float]:
    """The target sparsity after each of ``steps`` pruning steps, ending at ``final``.

    * ``"exponential"`` (classic IMP, the paper's "exponential pruner", Fig. 5): every step
      removes the same fraction of the weights still alive,
      ``s_t = 1 - (1 - s_i) * ((1 - s_f) / (1 - s_i)) ** (t / T)``.
    * ``"cubic"`` (gradual pruning of Zhu & Gupta 2017, "AGP"): fast first, slow at the end,
      ``s_t = s_f + (s_i - s_f) * (1 - t / T) ** 3``.
    """
    check_sparsity(final)
    if steps < 1:
        raise PluginError(f"pruning steps must be >= 1, got {steps!r}. Fix: e.g. steps=5.")
    if schedule not in SCHEDULES:
        raise PluginError(
            f"pruning schedule must be one of {SCHEDULES}, got {schedule!r}. "
            "Fix the 'schedule' parameter."
        )
    initial = min(initial, final)
    out = []
    for t in range(1, steps + 1):
        frac = t / steps
        if schedule == "exponential":
            out.append(1.0 - (1.0 - initial) * ((1.0 - final) / (1.0 - initial)) ** frac)
        else:
            out.append(final + (initial - final) * (1.0 - frac) ** 3)
    out[-1] = final
    return out


def measure_sparsity(model: nn.Module, targets: Sequence[PruneTarget]) -> dict[str, float]:
    """Measure zeros on the model as it computes now (masks applied, if any are live).

    Returns ``sparsity`` (zeros / elements over the targeted tensors), ``sparsity_all``
    (zeros / elements over every parameter of the model, biases and norms included),
    ``pruned_tensors`` and ``zero_weights``.
    """
    zeros = total = 0
    for module, name in targets:
        weight = getattr(module, name)
        zeros += int((weight == 0).sum())
        total += weight.numel()
    all_zeros = all_total = 0
    for module in model.modules():
        for pname, param in module.named_parameters(recurse=False):
            tensor = _effective(module, pname, param)
            all_zeros += int((tensor == 0).sum())
            all_total += tensor.numel()
    return {
        "sparsity": zeros / max(total, 1),
        "sparsity_all": all_zeros / max(all_total, 1),
        "pruned_tensors": float(len(targets)),
        "zero_weights": float(zeros),
    }


def _current_weight(module: nn.Module) -> torch.Tensor | None:
    weight = getattr(module, "weight_orig", None)
    if weight is None:
        weight = getattr(module, "weight", None)
    return weight if isinstance(weight, torch.Tensor) else None


def _effective(module: nn.Module, pname: str, param: torch.Tensor) -> torch.Tensor:
    """A ``*_orig`` parameter counts as its masked value (what the forward pass uses)."""
    if pname.endswith("_orig"):
        masked = getattr(module, pname[: -len("_orig")], None)
        if isinstance(masked, torch.Tensor):
            return masked
    return param
