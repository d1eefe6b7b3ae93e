"""Tiny models of each backbone family and helpers for the compressor tests (CPU, seconds)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from snt_search.layers import LBiasPReLU
from snt_search.registry import Registry
from snt_search.specs import CompressionContext, Compressor

IMG = 16
CLASSES = 5


def tiny_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(3 * IMG * IMG, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, CLASSES),
    )


def tiny_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, CLASSES),
    )


def tiny_mixer() -> nn.Module:
    from timm.models.mlp_mixer import MlpMixer

    return _as_if_trained(
        MlpMixer(num_classes=CLASSES, img_size=IMG, patch_size=4, num_blocks=2, embed_dim=32)
    )


def tiny_vit() -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return _as_if_trained(
        VisionTransformer(
            img_size=IMG, patch_size=4, num_classes=CLASSES, embed_dim=32, depth=2, num_heads=2
        )
    )


def _as_if_trained(model: nn.Module) -> nn.Module:
    """timm zero-initializes classifier heads; a trained model has no such all-zero layer."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear) and not module.weight.any():
                nn.init.normal_(module.weight, std=0.05)
    return model


BACKBONES: dict[str, Callable[[], nn.Module]] = {
    "mlp": tiny_mlp,
    "cnn": tiny_cnn,
    "mixer": tiny_mixer,
    "vit": tiny_vit,
}


@pytest.fixture(params=sorted(BACKBONES))
def backbone(request: pytest.FixtureRequest) -> nn.Module:
    torch.manual_seed(0)
    return BACKBONES[request.param]().eval()


def batches(n: int = 2, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [
        (
            torch.randn(size, 3, IMG, IMG, generator=gen),
            torch.randint(0, CLASSES, (size,), generator=gen),
        )
        for _ in range(n)
    ]


def sgd_finetune(
    calibration: list[tuple[torch.Tensor, torch.Tensor]],
) -> Callable[[nn.Module, int], None]:
    """A finetune callback like the pipeline's: a few SGD steps per epoch on given batches."""

    def finetune(model: nn.Module, epochs: int) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=0.01)
        model.train()
        for _ in range(epochs):
            for x, y in calibration:
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
        model.eval()

    return finetune


@pytest.fixture
def context() -> CompressionContext:
    calib = batches()
    return CompressionContext(calibration=calib, finetune=sgd_finetune(calib))


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry.discover(autoload=False)


def get_compressor(registry: Registry, name: str) -> Compressor:
    plugin = registry.get("compressor", name)
    assert isinstance(plugin, Compressor)
    return plugin


def _digits(
    act: Callable[[int], nn.Module], epochs: int
) -> tuple[nn.Module, CompressionContext, Callable[[nn.Module], float]]:
    """An MLP trained for a second on sklearn's bundled digits (no download)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1400], perm[1400:]
    train_batches = [(x[train[i : i + 100]], y[train[i : i + 100]]) for i in range(0, 1400, 100)]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), act(64), nn.Linear(64, 64), act(64), nn.Linear(64, 10))

    def fit(m: nn.Module, n: int, lr: float = 1e-2) -> None:
        opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=lr)
        m.train()
        for _ in range(n):
            for xb, yb in train_batches:
                opt.zero_grad()
                nn.functional.cross_entropy(m(xb), yb).backward()
                opt.step()
        m.eval()

    def accuracy(m: nn.Module) -> float:
        with torch.no_grad():
            return float((m(x[test]).argmax(1) == y[test]).float().mean())

    fit(model, epochs)
    ctx = CompressionContext(
        calibration=train_batches[:8], finetune=lambda m, n: fit(m, n, lr=1e-3)
    )
    return model, ctx, accuracy


@pytest.fixture(scope="module")
def _relu_digits() -> tuple[nn.Module, CompressionContext, Callable[[nn.Module], float]]:
    return _digits(lambda c: nn.ReLU(), epochs=15)


@pytest.fixture
def digits_model(
    _relu_digits: tuple[nn.Module, CompressionContext, Callable[[nn.Module], float]],
) -> tuple[nn.Module, CompressionContext, Callable[[nn.Module], float]]:
    model, ctx, accuracy = _relu_digits
    return copy.deepcopy(model), ctx, accuracy


@pytest.fixture
def snt_digits_model() -> tuple[nn.Module, CompressionContext]:
    model, ctx, _ = _digits(lambda c: LBiasPReLU(c, channel_dim=-1), epochs=3)
    return model, ctx
