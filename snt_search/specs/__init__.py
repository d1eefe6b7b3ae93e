"""The contracts of the five plugin kinds. A plugin author reads one of these and one example."""

from __future__ import annotations

from .backbone import Backbone
from .base import Param, Plugin, PluginError, Range
from .compressor import CompressionContext, CompressionReport, Compressor
from .dataset import DataBundle, DataRequest, Dataset, DataUnavailable
from .optimizer import Optimizer
from .transform import Transform, TransformNotApplicable, TransformReport

KINDS: dict[str, type[Plugin]] = {
    "dataset": Dataset,
    "backbone": Backbone,
    "transform": Transform,
    "optimizer": Optimizer,
    "compressor": Compressor,
}

__all__ = [
    "KINDS",
    "Backbone",
    "CompressionContext",
    "CompressionReport",
    "Compressor",
    "DataBundle",
    "DataRequest",
    "DataUnavailable",
    "Dataset",
    "Optimizer",
    "Param",
    "Plugin",
    "PluginError",
    "Range",
    "Transform",
    "TransformNotApplicable",
    "TransformReport",
]
