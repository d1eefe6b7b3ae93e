"""snt-search: plugin-based AutoML search for compression-friendly vision models.

Implements the search around SNT (Heo et al., "SNT: Sharpness-Minimizing Network
Transformation for Fast Compression-friendly Pretraining"): plugins provide datasets,
backbones, transforms, optimizers and compressors; a driver searches their combinations to
minimise the loss sharpness lambda_max and the accuracy lost to compression.
"""

from __future__ import annotations

from .registry import PluginRecord, Registry, get_registry, reset_registry

__version__ = "0.1.0"

__all__ = ["PluginRecord", "Registry", "__version__", "get_registry", "reset_registry"]
