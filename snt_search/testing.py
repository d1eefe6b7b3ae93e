"""Conformance checks a plugin author runs with one test: ``check_plugin(MyPlugin)``.

Each check exercises the contract of the plugin's kind (see ``snt_search.specs``) on tiny
inputs and raises ``AssertionError`` saying which rule the plugin broke. Like
``optuna.testing``, this ships inside the package so third parties test against exactly what
snt-search expects.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .specs import (
    KINDS,
    Backbone,
    CompressionContext,
    CompressionReport,
    Compressor,
    DataBundle,
    DataRequest,
    Dataset,
    Optimizer,
    Plugin,
    PluginError,
    Transform,
    TransformNotApplicable,
    TransformReport,
)

__all__ = ["check_plugin", "reference_models"]


def check_plugin(
    plugin: type[Plugin] | Plugin,
    *,
    params: dict[str, Any] | None = None,
    backbone: type[Backbone] | Backbone | None = None,
    backbone_params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Check ``plugin`` (a class or an instance) against the contract of its kind.

    ``params`` are hyperparameters passed to the plugin (e.g. a small size for a backbone);
    ``request=DataRequest(...)`` is passed to a dataset's ``load``. A transform or compressor
    runs on small reference models and may refuse some of them; with ``backbone`` (a backbone
    class or instance, built with ``backbone_params`` for 3 classes of 32x32 RGB images) it
    also runs on that model and must not refuse it.
    """
    instance = plugin() if isinstance(plugin, type) else plugin
    cls = type(instance)
    kinds = [k for k, base in KINDS.items() if isinstance(instance, base)]
    assert len(kinds) == 1, (
        f"{cls.__name__} must subclass exactly one of snt_search.specs {list(KINDS)}"
    )
    instance.name = instance.name or cls.__name__.lower()
    assert cls.summary(), (
        f"{cls.__name__} needs a docstring: its first line is the summary `snt-search plugins` shows"
    )
    for key, value in instance.defaults.items():
        assert isinstance(value, bool | int | float | str), (
            f"{cls.__name__}.defaults[{key!r}] = {value!r}: defaults must be bool, int, float or str"
        )
    try:
        instance.resolve_params({"__no_such_param__": 1})
    except PluginError:
        pass
    else:
        raise AssertionError(f"{cls.__name__}.resolve_params must reject unknown parameters")
    checks: dict[str, Callable[..., None]] = {
        "dataset": _check_dataset,
        "backbone": _check_backbone,
        "transform": _check_transform,
        "optimizer": _check_optimizer,
        "compressor": _check_compressor,
    }
    if backbone is not None:
        assert kinds[0] in ("transform", "compressor"), (
            f"backbone= is for checking a transform or a compressor on it, not a {kinds[0]}"
        )
        kwargs["own"] = _own_model(backbone, backbone_params or {})
    checks[kinds[0]](instance, params or {}, **kwargs)


def _own_model(backbone: type[Backbone] | Backbone, params: dict[str, Any]) -> dict[str, nn.Module]:
    """``{"backbone NAME": model}``: the author's backbone, built for 3 classes of 32x32 RGB."""
    bb = backbone() if isinstance(backbone, type) else backbone
    assert isinstance(bb, Backbone), f"backbone= takes a Backbone class or instance, got {bb!r}"
    torch.manual_seed(0)
    model = bb.build(num_classes=3, image_size=32, in_chans=3, **params)
    return {f"backbone {bb.name or type(bb).__name__}": model}


def _check_dataset(ds: Dataset, params: dict[str, Any], request: DataRequest | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = ds.load(request or DataRequest(data_dir=Path(tmp), download=False), **params)
    assert isinstance(bundle, DataBundle), (
        f"{ds.name}.load must return a DataBundle, got {type(bundle)}"
    )
    bundle.validate(ds.name)
    assert len(bundle.train_y) > 0 and len(bundle.test_y) > 0, (
        f"{ds.name}: both splits must be non-empty"
    )


def _check_backbone(bb: Backbone, params: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = bb.build(num_classes=3, image_size=32, in_chans=3, **params)
    assert isinstance(model, nn.Module), f"{bb.name}.build must return an nn.Module"
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 3), (
        f"{bb.name}: logits must be [batch, num_classes] = (2, 3), got {tuple(out.shape)}"
    )
    out.sum().backward()
    assert any(p.grad is not None for p in model.parameters()), (
        f"{bb.name}: no parameter received a gradient"
    )


def reference_models() -> dict[str, nn.Module]:
    """Small models of the families transforms are expected to handle."""
    from timm.models.mlp_mixer import MlpMixer

    cnn = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )
    mixer = MlpMixer(
        num_classes=3, img_size=32, patch_size=8, num_blocks=2, embed_dim=16, mlp_ratio=(0.5, 2.0)
    )
    return {"cnn": cnn, "mixer": mixer}


def _check_transform(
    tf: Transform, params: dict[str, Any], own: dict[str, nn.Module] | None = None
) -> None:
    """Must transform at least one reference model, and ``own`` (the author's) if given."""
    applied = 0
    for family, model in {**(own or {}), **reference_models()}.items():
        before = sum(p.numel() for p in model.parameters())
        try:
            report = tf.apply(model, **params)
        except TransformNotApplicable as exc:
            assert not own or family not in own, f"{tf.name} refused the {family}: {exc}"
            continue
        applied += 1
        assert isinstance(report, TransformReport), f"{tf.name}.apply must return a TransformReport"
        after = sum(p.numel() for p in model.parameters())
        assert after - before == report.added_params, (
            f"{tf.name} on the {family} reference model reported added_params={report.added_params}, "
            f"but the parameter count changed by {after - before}"
        )
        out = model(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 3) and torch.isfinite(out).all(), (
            f"{tf.name} broke the {family} model's forward"
        )
    assert applied, f"{tf.name} applied to none of the reference models {list(reference_models())}"


def _check_optimizer(opt: Optimizer, params: dict[str, Any]) -> None:
    torch.manual_seed(0)
    x, w_true = torch.randn(64, 4), torch.randn(4, 1)
    y = x @ w_true
    model = nn.Linear(4, 1)
    optimizer = opt.build(model.parameters(), lr=0.05, weight_decay=0.0, **params)
    assert isinstance(optimizer, torch.optim.Optimizer), (
        f"{opt.name}.build must return a torch Optimizer"
    )

    def loss_fn() -> torch.Tensor:
        return nn.functional.mse_loss(model(x), y)

    with torch.no_grad():
        first = float(loss_fn())
    for _ in range(50):
        optimizer.zero_grad()
        loss_fn().backward()
        if opt.two_pass:

            def closure() -> torch.Tensor:
                loss = loss_fn()
                loss.backward()
                return loss

            optimizer.step(closure)  # type: ignore[arg-type]  # torch's stub: float
        else:
            optimizer.step()
    with torch.no_grad():
        last = float(loss_fn())
    assert last < first, (
        f"{opt.name}: 50 steps on a least-squares problem did not lower the loss ({first} -> {last})"
    )


def _compressor_models() -> dict[str, nn.Module]:
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    cnn = nn.Sequential(  # first, middle and last layer, so first/last-layer policies leave work
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 3),
    )
    vit = VisionTransformer(
        img_size=8, patch_size=2, num_classes=3, embed_dim=16, depth=2, num_heads=2
    )
    return {"cnn": cnn, "vit": vit}


def _check_compressor(
    comp: Compressor, params: dict[str, Any], own: dict[str, nn.Module] | None = None
) -> None:
    """Must compress at least one reference model, and ``own`` (the author's) if given; may
    refuse other reference models with a PluginError."""
    applied = []
    models = {family: (model, 8) for family, model in _compressor_models().items()}
    models = {**{family: (model, 32) for family, model in (own or {}).items()}, **models}
    for family, (model, size) in models.items():
        calibration = [
            (torch.randn(16, 3, size, size), torch.randint(0, 3, (16,))) for _ in range(2)
        ]

        def finetune(m: nn.Module, epochs: int, batches: Any = calibration) -> None:
            o = torch.optim.SGD(m.parameters(), lr=0.01)
            for _ in range(epochs):
                for xb, yb in batches:
                    o.zero_grad()
                    nn.functional.cross_entropy(m(xb), yb).backward()
                    o.step()

        original = copy.deepcopy(model)
        try:
            report = comp.compress(
                model, CompressionContext(calibration=calibration, finetune=finetune), **params
            )
        except PluginError as exc:
            assert not own or family not in own, f"{comp.name} refused the {family}: {exc}"
            continue
        applied.append(family)
        assert isinstance(report, CompressionReport), (
            f"{comp.name}.compress must return a CompressionReport"
        )
        for key, value in report.metrics.items():
            assert isinstance(value, int | float) and math.isfinite(value), (
                f"{comp.name}: metric {key}={value!r} is not finite"
            )
        with torch.no_grad():
            out = model(calibration[0][0])
            ref = original(calibration[0][0])
        assert out.shape == (16, 3) and torch.isfinite(out).all(), (
            f"{comp.name}: the compressed {family}'s forward broke"
        )
        changed = not torch.equal(out, ref) or len(model.state_dict()) != len(original.state_dict())
        assert changed, f"{comp.name}: compress left the {family} model's outputs unchanged"
    assert applied, f"{comp.name} refused every reference model {list(_compressor_models())}"
