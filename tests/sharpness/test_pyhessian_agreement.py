"""Agreement with PyHessian (Yao et al. 2020) on the same models, batches and loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snt_search.sharpness import estimate_lambda_max

from .helpers import SmallCNN, image_batches, small_mlp

pyhessian = pytest.importorskip("pyhessian")


def _pyhessian_top(model: nn.Module, batches: list, seed: int = 0) -> float:
    torch.manual_seed(seed)
    if len(batches) == 1:
        h = pyhessian.hessian(model.eval(), F.cross_entropy, data=batches[0], cuda=False)
    else:
        h = pyhessian.hessian(model.eval(), F.cross_entropy, dataloader=batches, cuda=False)
    values, _ = h.eigenvalues(maxIter=300, tol=1e-5, top_n=1)
    for p in model.parameters():
        p.grad = None
    return float(values[0])


@pytest.mark.parametrize("make_model", [SmallCNN, small_mlp], ids=["cnn", "mlp"])
@pytest.mark.parametrize("n_batches", [1, 3])
def test_lanczos_matches_pyhessian(make_model: type, n_batches: int) -> None:
    torch.manual_seed(0)
    model = make_model()
    batches = image_batches(n=48, batch_size=48 // n_batches)
    reference = _pyhessian_top(model, batches)
    ours = estimate_lambda_max(model, batches, tol=1e-4)
    assert ours.converged
    assert ours.lambda_max == pytest.approx(reference, rel=0.01)


def test_pyhessian_method_wraps_pyhessian() -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    batches = image_batches(n=32, batch_size=16)
    wrapped = estimate_lambda_max(model, batches, method="pyhessian", tol=1e-5, max_iter=300)
    direct = _pyhessian_top(model, batches)
    assert wrapped.method == "pyhessian" and wrapped.backend == "pyhessian"
    assert wrapped.lambda_max == pytest.approx(direct, rel=1e-3)
    assert wrapped.converged and 1 <= wrapped.hvp_count < 300
    lanczos = estimate_lambda_max(model, batches, tol=1e-4)
    assert lanczos.lambda_max == pytest.approx(wrapped.lambda_max, rel=0.01)
    assert lanczos.hvp_count < wrapped.hvp_count


def test_pyhessian_method_single_batch_and_top_k() -> None:
    torch.manual_seed(1)
    model = small_mlp()
    batches = image_batches(n=24, batch_size=24)
    r = estimate_lambda_max(model, batches, method="pyhessian", top_k=2, tol=1e-5, max_iter=300)
    ours = estimate_lambda_max(model, batches, top_k=2, tol=1e-6)
    assert r.eigenvalues[0] == pytest.approx(ours.eigenvalues[0], rel=0.01)
    assert len(r.eigenvalues) == 2
