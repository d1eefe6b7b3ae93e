"""snt-search: plugin-based AutoML search for compression-friendly vision models.

Implements the search around SNT (Heo et al., "SNT: Sharpness-Minimizing Network
Transformation for Fast Compression-friendly Pretraining"): plugins provide datasets,
backbones, transforms, optimizers and compressors; a driver searches their combinations to
minimise the loss sharpness lambda_max and the accuracy lost to compression.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .registry import PluginRecord, Registry, get_registry, reset_registry

if TYPE_CHECKING:
    from .export import load_model

__version__ = "0.1.0"

__all__ = [
    "PluginRecord",
    "Registry",
    "__version__",
    "get_registry",
    "load_model",
    "reset_registry",
]


def __getattr__(name: str) -> Any:
    """``load_model`` is imported on first use, so ``import snt_search`` stays light."""
    if name == "load_model":
        from .export import load_model

        return load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
