"""Write an export folder: ``model.safetensors``, ``config.json`` and a ``README.md`` card.

:func:`export_trial` fetches a trial's stored model (:mod:`.artifacts`), checks that it
rebuilds (:func:`~.files.load_model`), writes the card, and only then moves the finished
folder into place: everything is written in a temporary folder beside ``out`` and renamed,
so ``out`` either does not exist or is complete. An existing ``out`` is never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from safetensors import safe_open
from torch import nn

from ..registry import Registry
from .artifacts import fetch_model
from .card import model_card
from .codes import CODES
from .config import WHICH, ModelConfig, ModelFileError
from .files import CONFIG_FILE, MODEL_FILE, load_model, read_config, save_model

__all__ = ["check_out", "export_model", "export_trial"]


def check_out(out: Path) -> None:
    """Refuse an ``out`` that exists (an export never overwrites)."""
    if out.exists():
        raise ModelFileError(
            f"--out {out} exists; an export writes a new folder and never overwrites one. "
            "Fix: pass another --out, or remove that folder first."
        )


def export_trial(
    study: optuna.Study,
    trial: FrozenTrial,
    out: Path,
    *,
    which: str = "compressed",
    store: str | Path | None = None,
) -> dict[str, Any]:
    """Export ``trial``'s ``which`` model to the new folder ``out``; return what was written.

    ``store`` overrides the artifact store recorded with the trial.
    """
    if which not in WHICH:
        raise ModelFileError(f"--which must be one of {', '.join(WHICH)}, got {which!r}.")
    check_out(out)

    def fill(model_file: Path) -> None:
        fetch_model(study, trial, which, model_file, store=store)

    size, coded = _write_folder(out, fill)
    return {
        "study_name": study.study_name,
        "trial": trial.number,
        "which": which,
        "out": str(out),
        "files": [str(out / name) for name in (MODEL_FILE, CONFIG_FILE, "README.md")],
        "model_bytes": size,
        "int8_tensors": coded,
        "metrics": {
            k: trial.user_attrs.get(k)
            for k in ("base_accuracy", "compressed_accuracy", "accuracy_drop", "lambda_max")
        },
    }


def export_model(
    model: nn.Module, config: ModelConfig, out: Path, *, registry: Registry | None = None
) -> dict[str, Any]:
    """Write the in-memory ``model`` with ``config`` as the new export folder ``out``.

    The same folder as :func:`export_trial` writes (used by ``snt-search train --out``);
    returns ``{"out", "model_bytes", "int8_tensors"}``.
    """
    check_out(out)

    def fill(model_file: Path) -> None:
        save_model(model, config, model_file, registry=registry)

    size, coded = _write_folder(out, fill)
    return {"out": str(out), "model_bytes": size, "int8_tensors": coded}


def _write_folder(out: Path, fill: Callable[[Path], Any]) -> tuple[int, int]:
    """Make ``out`` atomically: ``fill(model_file)`` writes the model in a temporary folder,
    which gets the config and card once the model rebuilds, then is renamed to ``out``.
    Returns the model file's bytes and its number of int8-coded tensors."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        model_file = tmp / MODEL_FILE
        fill(model_file)
        config = read_config(model_file)
        load_model(model_file)  # a file that does not rebuild is not exported
        with safe_open(str(model_file), framework="pt") as fh:
            coded = sum(1 for key in fh.keys() if key.endswith(CODES))
        size = model_file.stat().st_size
        (tmp / CONFIG_FILE).write_text(config.to_json())
        card = model_card(config, file_bytes=size, coded_tensors=coded, folder=str(out))
        (tmp / "README.md").write_text(card)
        os.chmod(tmp, 0o755)
        check_out(out)  # again: another command may have made it meanwhile
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return size, coded
