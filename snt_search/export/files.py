"""Save a model as one safetensors file that says how to rebuild it; load it back.

:func:`save_model` writes the ``state_dict`` (quantized weights as int8 codes + scales, see
:mod:`.codes`) with the :class:`~.config.ModelConfig` as JSON in the file's metadata,
atomically (a temporary name, then a rename): a reader never sees half a file.
:func:`load_model` reads such a file, or an export folder (``model.safetensors`` beside
``config.json``), and rebuilds the module the way the trial built it::

    backbone.build(num_classes=, image_size=, in_chans=, **params)
    -> transform.apply(model, **params)
    -> compressor.restore(model, **params)        # compressed models only
    -> model.load_state_dict(weights, strict=True)

No pickle is involved, so loading a file from elsewhere runs no code but the plugins'.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..registry import Registry, get_registry
from ..specs import Backbone, Compressor, PluginError, Transform
from ..specs.compressor import RestoreUnsupported
from .codes import decode_state, encode_state
from .config import ModelConfig, ModelFileError

__all__ = [
    "CONFIG_FILE",
    "MODEL_FILE",
    "build_model",
    "encoded_bytes",
    "load_model",
    "read_config",
    "save_model",
]

MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"
_META = "snt_search.model"


def save_model(
    model: nn.Module, config: ModelConfig, path: str | Path, *, registry: Registry | None = None
) -> Path:
    """Write ``model`` and ``config`` to the ``.safetensors`` file ``path``; return the path.

    Refuses (:class:`~snt_search.specs.compressor.RestoreUnsupported`) a compressed model
    whose compressor has no ``restore`` hook: such a file could never be loaded.
    """
    if config.which == "compressed":
        compressor = _plugin(registry, "compressor", config.plugins["compressor"])
        assert isinstance(compressor, Compressor)
        if not compressor.can_restore():
            raise RestoreUnsupported.of(compressor.name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors, _ = encode_state(model.state_dict())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(_untie(tensors), tmp, metadata={_META: config.to_json()})
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def encoded_bytes(model: nn.Module) -> int:
    """The bytes :func:`save_model` writes for ``model``'s weights (without the config)."""
    from safetensors.torch import save

    tensors, _ = encode_state(model.state_dict())
    return len(save(_untie(tensors)))


def read_config(path: str | Path) -> ModelConfig:
    """The config of a model file, or of an export folder (its ``config.json``)."""
    path = Path(path)
    if path.is_dir():
        config = path / CONFIG_FILE
        if not config.is_file():
            raise ModelFileError(
                f"{path} has no {CONFIG_FILE}: it is not an export folder. Fix: point at a "
                "folder written by `snt-search export`, or at its model.safetensors."
            )
        return ModelConfig.from_json(config.read_text(), str(config))
    try:
        with safe_open(str(_model_file(path)), framework="pt") as fh:
            meta = fh.metadata() or {}
    except ModelFileError:
        raise
    except Exception as exc:
        raise _corrupt(path, exc) from None
    if _META not in meta:
        raise ModelFileError(
            f"{path} holds no snt-search model config (metadata {_META!r}); it was not "
            "written by snt-search. Fix: load it with safetensors directly, or export the "
            "model with `snt-search export`."
        )
    return ModelConfig.from_json(meta[_META], f"the config in {path}")


def load_model(
    path: str | Path, *, registry: Registry | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild the model saved at ``path`` (file or export folder), in eval mode.

    The plugins named in its config must be installed. Raises :class:`ModelFileError` for a
    missing, damaged or newer-format file, or weights that do not fit the rebuilt module.
    """
    file = _model_file(Path(path))
    config = read_config(path)
    try:
        tensors = load_file(str(file))
    except Exception as exc:
        raise _corrupt(file, exc) from None
    model = build_model(config, registry=registry)
    try:
        missing, unexpected = model.load_state_dict(decode_state(tensors), strict=False)
        problem = f"missing {missing[:3]}, unexpected {unexpected[:3]}"
    except RuntimeError as exc:  # a shape mismatch
        missing, unexpected = [], []
        problem = " ".join(str(exc).split())[:300]
    else:
        if not missing and not unexpected:
            return model.to(device).eval()
    made = [config.plugins["backbone"], config.plugins["transform"]]
    if config.which == "compressed":
        made.append(config.plugins["compressor"])
    raise ModelFileError(
        f"the weights in {file} do not fit the model its config rebuilds ({' + '.join(made)}): "
        f"{problem}. Fix: install the plugin versions the model was made with (see its "
        "config), or export it again."
    )


def build_model(config: ModelConfig, *, registry: Registry | None = None) -> nn.Module:
    """The module ``config`` describes, with random weights (the caller loads the real ones).

    The global RNG is left as it was (model initialisation draws from a forked one).
    """
    backbone = _plugin(registry, "backbone", config.plugins["backbone"])
    transform = _plugin(registry, "transform", config.plugins["transform"])
    assert isinstance(backbone, Backbone) and isinstance(transform, Transform)
    shape = config.dataset
    with torch.random.fork_rng(devices=[]):
        model = backbone.build(
            num_classes=shape["num_classes"],
            image_size=shape["image_size"],
            in_chans=shape["in_chans"],
            **config.params.get("backbone", {}),
        )
        transform.apply(model, **config.params.get("transform", {}))
    if config.which == "compressed":
        compressor = _plugin(registry, "compressor", config.plugins["compressor"])
        assert isinstance(compressor, Compressor)
        try:
            compressor.restore(model, **config.params.get("compressor", {}))
        except RestoreUnsupported as exc:
            raise ModelFileError(str(exc)) from None
    return model


def _plugin(registry: Registry | None, kind: str, name: str) -> object:
    try:
        return (registry or get_registry()).get(kind, name)
    except PluginError as exc:
        raise ModelFileError(
            f"the model needs {kind} {name!r}, which this environment cannot load: {exc} "
            "Fix: install the plugin package the model was made with."
        ) from None


def _model_file(path: Path) -> Path:
    file = path / MODEL_FILE if path.is_dir() else path
    if not file.is_file():
        where = f"{path} has no {MODEL_FILE}" if path.is_dir() else f"{path} does not exist"
        raise ModelFileError(
            f"{where}. Fix: pass an export folder (snt-search export --out DIR) or a model "
            ".safetensors file."
        )
    return file


def _corrupt(path: Path, exc: Exception) -> ModelFileError:
    return ModelFileError(
        f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}); it is "
        "damaged or truncated. Fix: export the model again (snt-search export)."
    )


def _untie(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage (tied weights): store such tensors as copies."""
    seen: set[int] = set()
    out = {}
    for key, value in tensors.items():
        ptr = value.untyped_storage().data_ptr()
        out[key] = value.clone() if ptr in seen else value
        seen.add(ptr)
    return out
