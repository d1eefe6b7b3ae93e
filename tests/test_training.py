"""The training loop: tensor augmentation, SAM's two passes, determinism, divergence, timing."""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch
from torch import nn

from snt_search.config import TrainConfig
from snt_search.data import TensorLoader, augment
from snt_search.layers import LBiasPReLU, eq1_op
from snt_search.registry import get_registry
from snt_search.specs import DataBundle, DataRequest
from snt_search.training import Diverged, lr_factor, train


def bundle(n: int = 64) -> DataBundle:
    data = (
        get_registry().get("dataset", "synthetic").load(DataRequest(), train_size=n, test_size=32)
    )  # type: ignore[attr-defined]
    assert isinstance(data, DataBundle)
    return data


def small_cnn(classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=4),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, classes),
    )


def test_augment_crops_and_flips_within_the_padded_image() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8) + 1
    out = augment(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
    for i in range(
        2
    ):  # every output row is a (possibly flipped, shifted) piece of the input or padding
        values = set(out[i].flatten().tolist()) - {0.0}
        assert values <= set(x[i].flatten().tolist())
    unpadded = augment(x, torch.Generator().manual_seed(0), pad=0)
    assert all(
        torch.equal(unpadded[i], x[i]) or torch.equal(unpadded[i], x[i].flip(2)) for i in range(2)
    )


def test_loader_covers_the_data_once_per_epoch_in_seeded_order() -> None:
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    y = torch.arange(10)
    loader = TensorLoader(x, y, mean=(0.0,), std=(1.0,), batch_size=4, shuffle=True, seed=3)
    seen = torch.cat([yb for _, yb in loader])
    assert sorted(seen.tolist()) == list(range(10)) and len(loader) == 3
    again = TensorLoader(x, y, mean=(0.0,), std=(1.0,), batch_size=4, shuffle=True, seed=3)
    assert torch.equal(torch.cat([yb for _, yb in again]), seen)
    xb, yb = next(iter(TensorLoader(x, y, mean=(0.0,), std=(1.0,), batch_size=10)))
    assert torch.allclose(xb[:, 0, 0, 0] * 255, yb.float())  # normalised from uint8 in 0..1 units


def test_lr_schedule_warms_up_then_decays() -> None:
    factors = [lr_factor(s, 100, 10, "cosine") for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[-1] < 0.01
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    steps = [lr_factor(s, 100, 0, "step") for s in (0, 49, 50, 74, 75, 99)]
    assert steps == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor(70, 100, 10, "constant") == 1.0
    with pytest.raises(ValueError, match="train.schedule must be 'cosine', 'step' or 'constant'"):
        lr_factor(0, 10, 0, "step-ish")


def test_training_learns_and_is_deterministic() -> None:
    data = bundle(128)
    cfg = TrainConfig(epochs=3, batch_size=32, lr=3e-3, augment=False)
    adam = get_registry().get("optimizer", "adam")
    runs = []
    for _ in range(2):
        model = small_cnn()
        result = train(model, adam, {}, data, cfg, seed=5)
        runs.append(
            (
                result.curve[-1].loss,
                result.curve[-1].test_accuracy,
                [p.detach().clone() for p in model.parameters()],
            )
        )
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][2], runs[1][2], strict=True))
    assert runs[0][1] > 50.0  # 4 classes: chance is 25%


def test_sam_updates_batchnorm_statistics_once_per_step() -> None:
    data = bundle(32)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=1e-3, augment=False)
    model_adam, model_sam = small_cnn(), small_cnn()
    registry = get_registry()
    train(model_adam, registry.get("optimizer", "adam"), {}, data, cfg, seed=0)
    train(model_sam, registry.get("optimizer", "sam"), {"rho": 0.05}, data, cfg, seed=0)
    bn_adam, bn_sam = model_adam[1], model_sam[1]
    # One step each, on the same first batch and the same weights: identical running statistics.
    assert torch.allclose(bn_adam.running_mean, bn_sam.running_mean)
    assert torch.allclose(bn_adam.running_var, bn_sam.running_var)
    assert bn_adam.momentum == bn_sam.momentum == 0.1  # restored after the second pass


def test_sam_without_closure_says_how_to_call_it() -> None:
    model = nn.Linear(2, 1)
    opt = get_registry().get("optimizer", "sam").build(model.parameters(), lr=0.1, weight_decay=0.0)  # type: ignore[attr-defined]
    model(torch.ones(1, 2)).sum().backward()
    with pytest.raises(ValueError, match=r"needs a closure .* call optimizer.step\(closure\)"):
        opt.step()


def test_nan_loss_stops_training_at_once() -> None:
    data = bundle(64)
    model = small_cnn()
    with torch.no_grad():
        model[-1].weight.fill_(float("nan"))
    with pytest.raises(
        Diverged, match=r"training loss became nan at epoch 1, step 1 .* lower train.lr"
    ):
        train(
            model,
            get_registry().get("optimizer", "adam"),
            {},
            data,
            TrainConfig(epochs=2, batch_size=16),
            seed=0,
        )


def test_train_time_excludes_the_one_time_kernel_build(monkeypatch: pytest.MonkeyPatch) -> None:
    real_ops, builds = eq1_op.ops, []

    def cold_cache_ops() -> Any:
        if not builds:
            time.sleep(1.5)  # what building the Eq. 1 kernels costs once per process
        builds.append(1)
        return real_ops()

    monkeypatch.setattr(eq1_op, "ops", cold_cache_ops)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=4), LBiasPReLU(8), nn.Flatten(), nn.Linear(8 * 8 * 8, 4)
    )
    adam = get_registry().get("optimizer", "adam")
    result = train(model, adam, {}, bundle(64), TrainConfig(epochs=1, batch_size=32), seed=0)
    assert len(builds) > 1  # built, then used by the steps
    assert result.images == 64
    assert result.seconds < 1.5  # two steps of a tiny model: milliseconds without the build
    assert result.images_per_s > 64 / 1.5


@pytest.mark.parametrize("name", ["sgd", "adamw", "asam", "gsam"])
def test_every_optimizer_trains(name: str) -> None:
    data = bundle(64)
    model = small_cnn()
    result = train(
        model,
        get_registry().get("optimizer", name),
        {},
        data,
        TrainConfig(epochs=2, batch_size=32, lr=0.01),
        seed=0,
    )
    assert result.curve[-1].loss < result.curve[0].loss * 1.5 and result.images == 128


def test_gsam_differs_from_sam_only_by_alpha() -> None:
    data = bundle(32)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.01, augment=False)
    registry = get_registry()
    weights = []
    for name, hp in (("sam", {}), ("gsam", {"alpha": 0.0}), ("gsam", {"alpha": 0.5})):
        model = small_cnn()
        train(model, registry.get("optimizer", name), hp, data, cfg, seed=0)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1])  # alpha = 0 is plain SAM
    assert not torch.allclose(weights[0], weights[2])


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = bundle(64)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=3e-3)
    adam = get_registry().get("optimizer", "adam")
    straight = small_cnn()
    expected = train(straight, adam, {}, data, cfg, seed=1)

    def stop_after_first(stats) -> None:  # type: ignore[no-untyped-def]
        if stats.epoch == 1:
            raise KeyboardInterrupt

    ckpt = tmp_path / "trial.safetensors"
    with pytest.raises(KeyboardInterrupt):
        train(small_cnn(), adam, {}, data, cfg, seed=1, checkpoint=ckpt, on_epoch=stop_after_first)
    epochs_run = []
    resumed_model = small_cnn()
    resumed = train(
        resumed_model,
        adam,
        {},
        data,
        cfg,
        seed=1,
        checkpoint=ckpt,
        on_epoch=lambda s: epochs_run.append(s.epoch),
    )
    assert epochs_run == [2, 3]  # epoch 1 was not trained again
    assert [e.loss for e in resumed.curve] == pytest.approx(
        [e.loss for e in expected.curve], rel=1e-5
    )
    for a, b in zip(straight.parameters(), resumed_model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "cls"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_adam_and_adamw_build_their_torch_class_with_the_plugin_parameters(
    name: str, cls: type[torch.optim.Optimizer]
) -> None:
    plugin = get_registry().get("optimizer", name)
    params = [nn.Parameter(torch.zeros(3))]
    opt = plugin.build(params, lr=0.1, weight_decay=0.01, beta1=0.8, eps=1e-6)  # type: ignore[attr-defined]
    assert type(opt) is cls
    assert opt.defaults["betas"] == (0.8, 0.999) and opt.defaults["eps"] == 1e-6
    assert opt.defaults["lr"] == 0.1 and opt.defaults["weight_decay"] == 0.01


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "sam", "asam", "gsam"])
def test_builtin_optimizers_step_fused_and_match_the_default_step(name: str) -> None:
    registry = get_registry()
    plugin = registry.get("optimizer", name)
    models = []
    for _ in range(2):
        torch.manual_seed(0)  # no bias before BatchNorm: its gradient is rounding noise
        models.append(
            nn.Sequential(
                nn.Conv2d(3, 8, 3, stride=4, bias=False),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(8 * 8 * 8, 4),
            )
        )
    opts = [plugin.build(m.parameters(), lr=0.01, weight_decay=1e-4) for m in models]  # type: ignore[attr-defined]
    base = [getattr(o, "base", o) for o in opts]
    assert base[0].defaults["fused"] is True  # CPU float32: the fused C++ step
    base[1].defaults["fused"] = None  # the reference: torch's per-tensor step
    for group in base[1].param_groups:
        group["fused"] = None
    torch.manual_seed(1)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 4, (8,))
    for _ in range(3):
        for model, opt in zip(models, opts, strict=True):

            def closure(model: nn.Module = model) -> torch.Tensor:
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                return loss

            opt.zero_grad()
            closure()
            opt.step(closure) if plugin.two_pass else opt.step()  # type: ignore[attr-defined]
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_fused_only_where_torch_fuses() -> None:
    from snt_search.specs.optimizer import fused_kwargs

    w = nn.Parameter(torch.zeros(3))
    assert fused_kwargs([w]) == {"fused": True}
    assert fused_kwargs([{"params": [w]}]) == {"fused": True}
    assert fused_kwargs([w, nn.Parameter(torch.zeros(2, device="meta"))]) == {}  # two devices
    assert fused_kwargs([nn.Parameter(torch.zeros(2, device="meta"))]) == {}  # unsupported device
    assert fused_kwargs([torch.zeros(2, dtype=torch.int64)]) == {}  # not floating point
