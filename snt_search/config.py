"""Settings of one trial that are not plugin hyperparameters: training, sharpness, budgets.

Each is a small frozen dataclass whose field defaults are also the types a study space may
set (``train.lr = 1e-3`` or a distribution over it). ``Budget`` is what ``--budget`` picks
from a space file: how much data and compute one trial may use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, get_args, get_type_hints

__all__ = [
    "Budget",
    "FinetuneConfig",
    "SharpnessConfig",
    "SweepConfig",
    "TrainConfig",
    "field_types",
]

PRECISIONS = ("auto", "bf16", "fp32")  # train.precision (see snt_search.precision)
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")  # train.memory_format
DECAY_SCOPES = ("weights", "all")  # train.weight_decay_scope
SCHEDULES = ("cosine", "step", "constant")  # train.schedule, finetune.schedule
FIG5_SPARSITIES = tuple(round(0.1 * i, 1) for i in range(10))  # 0.0 .. 0.9, paper Fig. 5


@dataclass(frozen=True)
class TrainConfig:
    """How a trial trains its model (paper Sec. 5: Adam/SAM, cosine decay with warm-up)."""

    epochs: int = 1
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-4
    # "weights": decay conv/linear weight matrices only; biases, normalisation and Eq. 1's
    # gamma/beta/zeta get none (L2 on beta pulls Eq. 1 toward ReLU). "all": every parameter.
    weight_decay_scope: str = "weights"
    warmup_epochs: float = 0.0  # linear warm-up, in epochs (fractions allowed)
    schedule: str = "cosine"  # cosine | step | constant
    augment: bool = True  # random crop (pad 4) + horizontal flip, on tensors
    label_smoothing: float = 0.0
    eval_batch_size: int = 512
    precision: str = "auto"  # auto | bf16 | fp32 (see snt_search.precision)
    memory_format: str = "auto"  # auto | channels_last | contiguous

    def __post_init__(self) -> None:
        for key, ok, rule in (
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("eval_batch_size", self.eval_batch_size >= 1, ">= 1"),
            ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("warmup_epochs", self.warmup_epochs >= 0, ">= 0"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
        ):
            if not ok:
                raise ValueError(f"train.{key} must be {rule}, got {getattr(self, key)!r}")
        for key, allowed in (
            ("schedule", SCHEDULES),
            ("precision", PRECISIONS),
            ("memory_format", MEMORY_FORMATS),
            ("weight_decay_scope", DECAY_SCOPES),
        ):
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"train.{key} must be one of {allowed}, got {getattr(self, key)!r}; "
                    f"(see docs/training.md)"
                )


@dataclass(frozen=True)
class SharpnessConfig:
    """How lambda_max is estimated: on ``samples`` training images drawn with the trial seed."""

    method: str = "lanczos"  # lanczos | power | pyhessian
    samples: int = 512
    batch_size: int = 64  # per HVP; memory grows with it, the estimate does not depend on it
    max_iter: int = 50
    tol: float = 1e-3
    # An estimate that did not converge within max_iter keeps its trial off the front (it
    # stays COMPLETE, with off_front_reason); a negative one always does (sharpness/trust.py).
    require_converged: bool = True


@dataclass(frozen=True)
class FinetuneConfig:
    """How compressors fine-tune: PTQ's epoch after quantizing, QAT, IMP between steps.

    The default is one protocol for every arm of a comparison, so that the compression step
    does not differ with the way the model was trained (a SAM-trained model is not fine-tuned
    with SAM): ``optimizer = "adam"`` at ``lr_scale`` times the trial's ``train.lr``, linear
    warm-up over ``warmup_epochs`` then ``schedule`` decay, restarted at each fine-tune call
    (paper Sec. 5, Fig. 5: cosine decay with warm-up). ``optimizer = "trial"`` fine-tunes with
    the trial's own optimizer plugin and its parameters instead. Weight decay is the trial's
    (``train.weight_decay`` and ``train.weight_decay_scope``).
    """

    optimizer: str = "adam"  # an optimizer plugin, or "trial": the trial's own
    lr_scale: float = 0.1  # fine-tune lr = train.lr * lr_scale
    warmup_epochs: float = 0.1  # linear warm-up, in epochs of each fine-tune call
    schedule: str = "cosine"  # cosine | step | constant

    def __post_init__(self) -> None:
        if not (self.lr_scale > 0 and self.warmup_epochs >= 0):
            raise ValueError(
                f"finetune.lr_scale must be > 0 and finetune.warmup_epochs >= 0, got "
                f"{self.lr_scale!r} and {self.warmup_epochs!r}; e.g. lr_scale = 0.1"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"finetune.schedule must be one of {SCHEDULES}, got {self.schedule!r}")


# What a trial stored before [finetune] existed fine-tuned this way: re-runs of it keep to it.
LEGACY_FINETUNE = FinetuneConfig(optimizer="trial", lr_scale=1.0, warmup_epochs=0.0)


@dataclass(frozen=True)
class SweepConfig:
    """An accuracy-vs-sparsity curve per trial (paper Fig. 5), from a pruning compressor."""

    compressor: str = "magnitude_prune"
    sparsities: tuple[float, ...] = FIG5_SPARSITIES


@dataclass(frozen=True)
class Budget:
    """One named budget of a space (smoke, short, paper): data subsets and overrides."""

    name: str = "smoke"
    epochs: int = 1
    batch_size: int | None = None
    train_subset: int | None = None  # None: the whole training set
    test_subset: int | None = None
    sharpness_samples: int | None = None
    sharpness_max_iter: int | None = None
    # Sets the compressor's finetune_epochs (PTQ's fine-tune, QAT's training epochs) in this
    # budget; every compressor the space names must have that parameter.
    finetune_epochs: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def field_types(cls: type) -> dict[str, type]:
    """Name -> type of each field of a config dataclass, ``X | None`` read as ``X``."""
    hints = get_type_hints(cls)
    out = {}
    for f in fields(cls):
        args = [a for a in get_args(hints[f.name]) if a is not type(None)]
        out[f.name] = args[0] if args else hints[f.name]
    return out
