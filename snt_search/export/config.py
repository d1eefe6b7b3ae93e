"""What a saved model says about itself: how to rebuild it and where it came from.

A :class:`ModelConfig` travels inside every model file (safetensors metadata) and beside it as
``config.json`` in an export folder. It names the plugins and parameters that rebuild the
module (backbone -> transform -> compressor structure), the input it expects (classes, image
size, channels, normalisation) and, under ``trial``, what the trial measured. ``format`` is
the layout version of this file: a reader refuses a format newer than it knows
(:data:`FORMAT_VERSION`) instead of guessing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..specs import DataBundle

__all__ = ["FORMAT_VERSION", "KINDS", "WHICH", "ModelConfig", "ModelFileError", "dataset_info"]

FORMAT_VERSION = 1
KINDS = ("dataset", "backbone", "transform", "optimizer", "compressor")
WHICH = ("trained", "compressed")


class ModelFileError(ValueError):
    """A model file, folder or config cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class ModelConfig:
    """How to rebuild one saved model, and its provenance (see the module docstring).

    ``plugins[kind]`` and ``params[kind]`` for each of :data:`KINDS`; ``dataset`` holds the
    input shape (``num_classes``, ``image_size``, ``in_chans``, ``mean``, ``std``,
    ``classes``); ``trial`` the study, trial number, metrics, reports, training settings and
    budget (free-form, for the model card). ``which`` is ``"trained"`` (before compression)
    or ``"compressed"`` (the compressor's structure is rebuilt too).
    """

    which: str
    plugins: dict[str, str]
    params: dict[str, dict[str, Any]]
    dataset: dict[str, Any]
    trial: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT_VERSION
    snt_search_version: str = __version__

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format,
            "snt_search_version": self.snt_search_version,
            "which": self.which,
            "dataset": {"name": self.plugins["dataset"], **self.dataset},
        }
        for kind in KINDS[1:]:
            out[kind] = {"name": self.plugins[kind], "params": self.params.get(kind, {})}
        out["dataset"]["params"] = self.params.get("dataset", {})
        out["trial"] = self.trial
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=False, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> ModelConfig:
        """Parse the JSON of ``source`` (named in errors); refuse a newer format."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFileError(
                f"{source} is not valid JSON ({exc}); the file is damaged. Fix: export the "
                "model again (snt-search export) or restore the file."
            ) from None
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Any, source: str) -> ModelConfig:
        """Validate a parsed config; ``source`` names the file in errors."""
        if not isinstance(data, Mapping) or not isinstance(data.get("format"), int):
            raise ModelFileError(
                f"{source} has no integer 'format': it is not an snt-search model config. "
                "Fix: point at a folder written by `snt-search export` or a model artifact."
            )
        if data["format"] > FORMAT_VERSION:
            raise ModelFileError(
                f"{source} has format {data['format']}, written by snt-search "
                f"{data.get('snt_search_version', '?')}; this snt-search ({__version__}) reads "
                f"format {FORMAT_VERSION} and older. Fix: pip install -U snt-search."
            )
        try:
            plugins = {kind: str(data[kind]["name"]) for kind in KINDS}
            params = {kind: dict(data[kind].get("params", {})) for kind in KINDS}
            dataset = {k: v for k, v in data["dataset"].items() if k not in ("name", "params")}
            for key in ("num_classes", "image_size", "in_chans"):
                dataset[key] = int(dataset[key])
            which = str(data["which"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(
                f"{source} lacks or garbles {exc}; the config is incomplete. Fix: export the "
                "model again (snt-search export)."
            ) from None
        if which not in WHICH:
            raise ModelFileError(f"{source}: 'which' must be one of {WHICH}, got {which!r}.")
        return cls(
            which=which,
            plugins=plugins,
            params=params,
            dataset=dataset,
            trial=dict(data.get("trial") or {}),
            format=int(data["format"]),
            snt_search_version=str(data.get("snt_search_version", "?")),
        )


def dataset_info(data: DataBundle) -> dict[str, Any]:
    """The input a model built on ``data`` expects (the ``dataset`` part of a config)."""
    return {
        "num_classes": data.num_classes,
        "image_size": data.image_size,
        "in_chans": data.in_chans,
        "mean": list(data.mean),
        "std": list(data.std),
        "classes": list(data.classes),
    }
