"""A study's product is models: save, load and export trained and compressed models.

Every finished trial can keep its trained and its compressed model as safetensors files that
say how to rebuild them (:mod:`.config`, :mod:`.files`); quantized weights are stored as
integer codes (:mod:`.codes`). ``snt_search.load_model(DIR)`` rebuilds one. See
``docs/export.md``.
"""

from __future__ import annotations

from .codes import decode_state, encode_state
from .config import FORMAT_VERSION, ModelConfig, ModelFileError, dataset_info
from .files import CONFIG_FILE, MODEL_FILE, build_model, load_model, read_config, save_model

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "ModelConfig",
    "ModelFileError",
    "build_model",
    "dataset_info",
    "decode_state",
    "encode_state",
    "load_model",
    "read_config",
    "save_model",
]
