"""Checkpoints as safetensors: no pickle on load, written atomically (temp file, then rename).

A checkpoint holds the model's state dict and, optionally, the optimizer's tensors and its
JSON-safe settings, plus free-form JSON metadata (the trial spec, the epoch). Loading never
unpickles anything, so a checkpoint from an untrusted source cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["load_checkpoint", "read_metadata", "save_checkpoint"]

_META = "snt_search"


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (and ``optimizer``) to ``path`` atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    extra: dict[str, Any] = {"metadata": metadata or {}}
    if optimizer is not None:
        state = optimizer.state_dict()
        for idx, slots in state["state"].items():
            for name, value in slots.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{idx}.{name}"] = value.detach().contiguous().cpu()
        extra["optim_scalars"] = {
            str(idx): {k: v for k, v in slots.items() if not isinstance(v, torch.Tensor)}
            for idx, slots in state["state"].items()
        }
        extra["optim_groups"] = state["param_groups"]
    tensors = _untie(tensors)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint is an ordinary file
    try:
        save_file(tensors, tmp, metadata={_META: json.dumps(extra, default=str)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load weights (and optimizer state) from ``path`` into the given objects; return metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; pass the .safetensors file `train --out` wrote"
        )
    tensors = load_file(str(path), device=str(map_location))
    extra = _extra(path)
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {path} does not fit this model: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}; build the model with the same backbone, transform and params"
        )
    if optimizer is not None:
        if "optim_groups" not in extra:
            raise ValueError(f"checkpoint {path} holds no optimizer state")
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        for idx, scalars in extra.get("optim_scalars", {}).items():
            state.setdefault(int(idx), {}).update(scalars)
        optimizer.load_state_dict({"state": state, "param_groups": extra["optim_groups"]})
        _match_param_layout(optimizer)
    return dict(extra.get("metadata", {}))


def _match_param_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give per-parameter state the strides of its parameter (e.g. channels_last), as a fresh
    optimizer does: the checkpoint stores it contiguous, and fused steps assume one layout."""
    for param, slots in optimizer.state.items():
        for name, value in slots.items():
            if (
                isinstance(value, torch.Tensor)
                and isinstance(param, torch.Tensor)
                and value.shape == param.shape
                and value.stride() != param.stride()
            ):
                slots[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata stored with a checkpoint, without loading its tensors."""
    return dict(_extra(Path(path)).get("metadata", {}))


def _extra(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    return json.loads(meta.get(_META, "{}"))


def _untie(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage (tied weights): store such tensors as copies."""
    seen: set[int] = set()
    out = {}
    for key, value in tensors.items():
        ptr = value.untyped_storage().data_ptr()
        out[key] = value.clone() if ptr in seen else value
        seen.add(ptr)
    return out
