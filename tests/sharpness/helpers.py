"""Small models with closed-form Hessians, shared by the sharpness tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def identity_loss(out: Tensor, y: Tensor) -> Tensor:
    """A "loss" that is the model output itself (for models that compute their own loss)."""
    return out


def mse_loss(out: Tensor, y: Tensor) -> Tensor:
    """Mean squared error of a single-output regression."""
    return F.mse_loss(out.squeeze(-1), y)


def spectrum_matrix(eigenvalues: Tensor, seed: int = 0) -> Tensor:
    """A random symmetric float64 matrix with the given eigenvalues."""
    n = eigenvalues.numel()
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q @ torch.diag(eigenvalues.to(torch.float64)) @ q.T


class Quadratic(nn.Module):
    """``0.5 * w^T A w``: its Hessian is ``A`` (inputs are ignored)."""

    def __init__(self, a: Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a)
        self.w = nn.Parameter(torch.ones(a.shape[0], dtype=a.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * self.w @ self.a @ self.w


def least_squares(
    n: int = 40, d: int = 6, seed: int = 0
) -> tuple[nn.Linear, Tensor, Tensor, Tensor]:
    """A float64 linear model, data, targets and the exact Hessian ``2 X1^T X1 / n`` of MSE.

    ``X1`` is ``X`` with a column of ones (the bias).
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * torch.linspace(0.5, 3, d).double()
    y = torch.randn(n, generator=gen, dtype=torch.float64)
    model = nn.Linear(d, 1).double()
    x1 = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)
    return model, x, y, 2 * x1.T @ x1 / n


class SmallCNN(nn.Module):
    """conv-BN-ReLU-pool-linear classifier for 8x8 single-channel images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(self.drop(h.flatten(1)))


def small_mlp() -> nn.Module:
    """A tanh MLP for 8x8 inputs (smooth, so the Hessian is well defined everywhere)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 3))


def image_batches(n: int = 48, batch_size: int = 16, seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """Random 1x8x8 images and 3-class labels, in batches (the last one may be smaller)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=gen)
    y = torch.randint(0, 3, (n,), generator=gen)
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)]
