"""Checkpoints: safetensors round trip with optimizer state, atomic writes, clear mismatch errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from snt_search.checkpoint import load_checkpoint, read_metadata, save_checkpoint


def net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def test_round_trip_with_optimizer_and_metadata(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, path = net(), tmp_path / "m.safetensors"
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    save_checkpoint(path, model, optimizer=opt, metadata={"epoch": 3, "config": {"lr": 0.01}})
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left behind
    other = net()
    other_opt = torch.optim.Adam(other.parameters(), lr=0.5)
    meta = load_checkpoint(path, other, optimizer=other_opt)
    assert meta == {"epoch": 3, "config": {"lr": 0.01}} == read_metadata(path)
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert other_opt.param_groups[0]["lr"] == 0.01
    s0, s1 = opt.state_dict()["state"][0], other_opt.state_dict()["state"][0]
    assert torch.equal(s0["exp_avg"], s1["exp_avg"]) and float(s0["step"]) == float(s1["step"])


def tied() -> nn.Module:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[1].weight = model[0].weight
    return model


def test_tied_weights_are_saved(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, other = tied(), tied()  # different random weights
    save_checkpoint(tmp_path / "t.safetensors", model)
    load_checkpoint(tmp_path / "t.safetensors", other)
    assert other[1].weight is other[0].weight  # still tied
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_mismatch_and_missing_file_say_what_to_do(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "m.safetensors", net())
    with pytest.raises(
        ValueError, match="does not fit this model: missing .* same backbone, transform"
    ):
        load_checkpoint(tmp_path / "m.safetensors", nn.Linear(4, 2))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors", net())
    with pytest.raises(ValueError, match="holds no optimizer state"):
        model = net()
        load_checkpoint(
            tmp_path / "m.safetensors", model, optimizer=torch.optim.SGD(model.parameters(), lr=1)
        )
