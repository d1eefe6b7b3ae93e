"""Every use of Optuna's private API, in one place.

snt-search needs a few things Optuna does not publish: a trial's storage id, a study's storage,
the hypervolume routine, the heartbeat base class a storage implements, the logger of the
"Trial N failed" warnings, the artifact-store protocol (for annotations), the system
attribute that links an artifact written elsewhere (a Ray worker) to its trial and, for
Optuna 4, the system attribute that holds constraint values.
Everything else in snt-search imports them from here, and ``tests/test_optuna_compat.py``
exercises each one against the installed Optuna, so a release that moves or renames one fails
there, by name, instead of somewhere in a study.

The names Optuna used up to this module's writing (4.x-5.1) are listed in :data:`PRIVATE`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

try:  # a storage whose running trials beat implements this (RDBStorage does)
    from optuna.storages._heartbeat import BaseHeartbeat
except ImportError as exc:  # pragma: no cover - only with an Optuna that moved it
    raise ImportError(
        f"snt-search needs Optuna's heartbeat base class optuna.storages._heartbeat."
        f"BaseHeartbeat, which optuna {optuna.__version__} does not have ({exc}). Fix: install "
        f"the Optuna version in .ci/constraints.txt, or update snt_search/optuna_compat.py"
    ) from exc

try:  # what an artifact store implements (open_reader, write, remove): for annotations only
    from optuna.artifacts._protocol import ArtifactStore
except ImportError:  # pragma: no cover - a typing aid must never stop snt-search
    ArtifactStore = Any  # type: ignore[misc,assignment]

__all__ = [
    "PRIVATE",
    "TRIAL_LOGGER",
    "ArtifactStore",
    "BaseHeartbeat",
    "compute_hypervolume",
    "constraint_values",
    "link_artifact",
    "set_constraints_attr",
    "stored_trial",
    "study_storage",
    "trial_id",
]

# What each helper reads, for the error messages and the tests.
PRIVATE = {
    "trial_id": "Trial._trial_id / FrozenTrial._trial_id",
    "study_storage": "Study._storage",
    "compute_hypervolume": "optuna._hypervolume.compute_hypervolume",
    "BaseHeartbeat": "optuna.storages._heartbeat.BaseHeartbeat",
    "ArtifactStore": "optuna.artifacts._protocol.ArtifactStore",
    "TRIAL_LOGGER": "the logger optuna.study._optimize",
    "constraint_values": "system attributes 'constraints' and 'constraints:<name>'",
    "link_artifact": "optuna.artifacts._upload.ARTIFACTS_ATTR_PREFIX and ArtifactMeta",
}

# The logger of Optuna's "Trial N failed with ..." warnings (the driver filters surplus trials').
TRIAL_LOGGER = "optuna.study._optimize"
_CONSTRAINTS = "constraints"  # Optuna's system attribute (and ``constraints:<name>`` prefix)


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of ``trial`` (not its number): what storage methods take."""
    return int(_private(trial, "_trial_id", "trial_id"))


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` reads and writes (what it was loaded or created with)."""
    storage: BaseStorage = _private(study, "_storage", "study_storage")
    return storage


def stored_trial(trial: optuna.Trial) -> FrozenTrial:
    """``trial`` as its storage holds it now (system attributes included)."""
    return study_storage(trial.study).get_trial(trial_id(trial))


def compute_hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The hypervolume that ``points`` (rows, minimization) dominate up to ``reference``.

    Every point must be strictly better than ``reference`` in every objective; the points need
    not be non-dominated.
    """
    try:
        from optuna._hypervolume import compute_hypervolume as compute
    except ImportError as exc:  # pragma: no cover - only with an Optuna that moved it
        raise ImportError(_moved("compute_hypervolume", exc)) from exc
    return float(compute(points, reference, assume_pareto=False))


def constraint_values(trial: FrozenTrial) -> dict[str, float]:
    """The constraint values stored with ``trial`` by name (feasible: all <= 0; {}: none).

    Optuna 5 reads them with ``FrozenTrial.constraints``; Optuna 4 stored one list in the
    system attribute ``constraints`` (named ``"0"``, ``"1"``, ... here).
    """
    public = getattr(trial, "constraints", None)
    if isinstance(public, dict):
        return {str(k): float(v) for k, v in public.items()}
    out: dict[str, float] = {}  # pragma: no cover - Optuna 4
    for key, value in trial.system_attrs.items():  # pragma: no cover - Optuna 4
        if key == _CONSTRAINTS and value is not None:
            out.update({str(i): float(v) for i, v in enumerate(value)})
        elif key.startswith(f"{_CONSTRAINTS}:"):
            out[key.removeprefix(f"{_CONSTRAINTS}:")] = float(value)
    return out  # pragma: no cover - Optuna 4


def set_constraints_attr(trial: optuna.Trial, values: dict[str, float]) -> None:
    """Store constraint values the way Optuna 4 reads them (Optuna 5: ``set_constraint``)."""
    storage = study_storage(trial.study)
    storage.set_trial_system_attr(trial_id(trial), _CONSTRAINTS, tuple(values.values()))


def link_artifact(study: optuna.Study, trial_number: int, artifact_id: str, filename: str) -> None:
    """Record an artifact already written to a store as ``trial_number``'s, exactly as
    ``optuna.artifacts.upload_artifact`` records the ones it writes (what
    ``get_all_artifact_meta`` and optuna-dashboard list). For files written by a Ray worker,
    which has no handle on the study."""
    import json
    import mimetypes
    from dataclasses import asdict

    try:
        from optuna.artifacts._upload import (
            ARTIFACTS_ATTR_PREFIX,
            DEFAULT_MIME_TYPE,
            ArtifactMeta,
        )
    except ImportError as exc:  # pragma: no cover - only with an Optuna that moved them
        raise ImportError(_moved("link_artifact", exc)) from exc
    mimetype, encoding = mimetypes.guess_type(filename)
    meta = ArtifactMeta(artifact_id, filename, mimetype or DEFAULT_MIME_TYPE, encoding)
    storage = study_storage(study)
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial_number)
    storage.set_trial_system_attr(
        trial_id(frozen), ARTIFACTS_ATTR_PREFIX + artifact_id, json.dumps(asdict(meta))
    )


def _private(obj: Any, attr: str, helper: str) -> Any:
    try:
        return getattr(obj, attr)
    except AttributeError as exc:
        raise AttributeError(_moved(helper, exc)) from exc


def _moved(helper: str, exc: Exception) -> str:
    return (
        f"snt-search reads Optuna's private {PRIVATE[helper]}, which optuna "
        f"{optuna.__version__} does not have ({exc}). Fix: install the Optuna version in "
        f".ci/constraints.txt, or update snt_search/optuna_compat.{helper}"
    )
