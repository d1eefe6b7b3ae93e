"""A finished trial's models as Optuna artifacts: store them, find them, drop the dominated.

:func:`keep_trial_models` saves a trial's trained and compressed models (:func:`save_model`,
each file carrying its rebuild config and what the trial measured) and uploads both with
``optuna.artifacts.upload_artifact``. The trial's user attributes say where they went:

* ``model_artifacts``: ``{"trained": <artifact id>, "compressed": <artifact id>}``
* ``model_store``: the store (an absolute folder, or ``s3://bucket/prefix``)
* ``model_missing``: ``{which: why}`` for a model that could not be kept (a compressor without
  a ``restore`` hook), absent otherwise.

``--keep-models front`` (the default) removes the files of finished trials that are off the
Pareto front (:func:`drop_models_off_front`); a dominated trial stays dominated, so what is
removed is never needed again. The numbers of those trials are kept in the study's user
attribute ``models_removed``. :func:`fetch_model` downloads one model, with an error that
says why when it cannot.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import download_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState

from ..optuna_compat import link_artifact, stored_trial
from ..pareto import front_trials
from ..registry import Registry
from ..specs.compressor import RestoreUnsupported
from ..trial_spec import TrialSpec
from .config import WHICH, ModelConfig, ModelFileError
from .files import save_model
from .store import open_store, store_url

__all__ = [
    "ARTIFACTS_ATTR",
    "KEEP_MODELS",
    "MISSING_ATTR",
    "REMOVED_ATTR",
    "STORE_ATTR",
    "drop_models_off_front",
    "fetch_model",
    "finishing",
    "front_numbers",
    "keep_trial_models",
    "models_status",
    "record_trial_models",
    "settle_written_models",
    "write_trial_models",
]

KEEP_MODELS = ("front", "all", "none")
ARTIFACTS_ATTR, STORE_ATTR, MISSING_ATTR = "model_artifacts", "model_store", "model_missing"
REMOVED_ATTR = "models_removed"
_log = logging.getLogger(__name__)


def keep_trial_models(
    trial: optuna.Trial,
    spec: TrialSpec,
    result: Any,
    store: str | Path,
    *,
    registry: Registry | None = None,
) -> dict[str, str]:
    """Save and upload ``result.models`` (a :class:`~snt_search.pipeline.TrialResult`).

    Returns ``{which: artifact id}``; sets the user attributes of the module docstring.
    Upload errors propagate (the caller fails the trial with the reason); a model whose
    compressor cannot rebuild it is left out, saying why in ``model_missing``.
    """
    stored = write_trial_models(
        store, trial.study.study_name, trial.number, spec, result, registry=registry
    )
    return record_trial_models(trial.study, trial, stored)


def write_trial_models(
    store: str | Path,
    study_name: str,
    number: int,
    spec: TrialSpec,
    result: Any,
    *,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Save ``result.models`` and write them to ``store``, with no handle on the study (a Ray
    worker does this); :func:`record_trial_models` then links them to the trial.

    Returns plain data: ``{"store": url, "artifacts": {which: id}, "missing": {which: why}}``.
    """
    url = store_url(store)
    artifact_store = open_store(url)
    trial_info = {
        "study": study_name,
        "number": number,
        "metrics": dict(result.metrics),
        "reports": dict(result.reports),
        **{k: v for k, v in spec.as_dict().items() if k not in ("plugins", "params", "data_dir")},
    }
    ids: dict[str, str] = {}
    missing: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="snt-search-models-") as tmp:
        for which in WHICH:
            model = result.models.get(which)
            if model is None:
                continue
            config = ModelConfig(
                which=which,
                plugins=dict(spec.plugins),
                params={k: dict(v) for k, v in spec.params.items()},
                dataset=dict(result.dataset),
                trial=trial_info,
            )
            try:
                path = save_model(
                    model, config, Path(tmp) / f"{which}.safetensors", registry=registry
                )
            except RestoreUnsupported as exc:
                missing[which] = str(exc)
                continue
            ids[which] = str(uuid.uuid4())
            with open(path, "rb") as fh:
                artifact_store.write(ids[which], fh)
    return {"store": url, "artifacts": ids, "missing": missing}


def record_trial_models(
    study: optuna.Study, trial: optuna.Trial, stored: dict[str, Any]
) -> dict[str, str]:
    """Link what :func:`write_trial_models` wrote to the still RUNNING ``trial`` (as Optuna
    artifacts, listed by optuna-dashboard) and set the user attributes of the module
    docstring; returns ``{which: artifact id}``."""
    ids = dict(stored.get("artifacts") or {})
    for which, artifact_id in ids.items():
        link_artifact(study, trial.number, artifact_id, f"{which}.safetensors")
    trial.set_user_attr(STORE_ATTR, stored["store"])
    trial.set_user_attr(ARTIFACTS_ATTR, ids)
    if stored.get("missing"):
        trial.set_user_attr(MISSING_ATTR, dict(stored["missing"]))
    return ids


def settle_written_models(
    study: optuna.Study,
    trial: optuna.Trial,
    values: Sequence[float],
    stored: dict[str, Any],
    keep: str,
) -> None:
    """For models a Ray worker wrote (:func:`write_trial_models`) before ``trial`` is told
    ``values``: link them (``keep="all"``, or ``"front"`` while the trial is on the front),
    or remove them from the store saying why (``model_missing``); then, with ``"front"``,
    drop the models of the trials the finishing one pushed off the front. As the local
    driver keeps models (``snt_search/objective.py``), with the upload done first."""
    pending = finishing(stored_trial(trial), values)
    if keep == "all" or trial.number in front_numbers(study, pending):
        record_trial_models(study, trial, stored)
    else:
        artifact_store = open_store(stored["store"], create=False)
        for artifact_id in (stored.get("artifacts") or {}).values():
            try:
                artifact_store.remove(artifact_id)
            except ArtifactNotFound:
                pass
        why = (
            "it was off the Pareto front when it finished, and the study keeps the front's "
            "models only (--keep-models front). Fix: export a trial on the front, or run "
            "with --keep-models all"
        )
        trial.set_user_attr(MISSING_ATTR, dict.fromkeys(stored.get("artifacts") or {}, why))
    if keep == "front":
        drop_models_off_front(study, pending)


def models_status(study: optuna.Study, trial: FrozenTrial) -> str:
    """``"yes"`` (the trial's models are stored), ``"removed"`` (by ``--keep-models front``)
    or ``"no"`` (never stored: ``--keep-models none``, the Ray driver, an older snt-search).
    A ``"yes"`` is what the storage records; the store itself is not contacted."""
    if trial.number in set(study.user_attrs.get(REMOVED_ATTR) or []):
        return "removed"
    return "yes" if trial.user_attrs.get(ARTIFACTS_ATTR) else "no"


def finishing(trial: FrozenTrial, values: Sequence[float]) -> FrozenTrial:
    """A copy of the running ``trial`` as it will be once COMPLETE with ``values``."""
    pending = copy.copy(trial)
    pending.state, pending.values = TrialState.COMPLETE, list(values)
    return pending


def front_numbers(study: optuna.Study, pending: FrozenTrial | None = None) -> set[int]:
    """Numbers of the trials on the Pareto front, counting ``pending`` (see :func:`finishing`)."""
    trials = study.get_trials(deepcopy=False)
    if pending is not None:
        trials = [t for t in trials if t.number != pending.number] + [pending]
    return {t.number for t in front_trials(trials, study.directions)}


def drop_models_off_front(study: optuna.Study, pending: FrozenTrial | None = None) -> list[int]:
    """Remove the stored models of COMPLETE trials off the Pareto front; return their numbers.

    ``pending`` (a finishing trial) counts for the front. Trials listed in the study's
    ``models_removed`` are skipped; a file already gone is fine. A store that cannot be
    reached is logged and left for the next call.
    """
    removed = set(study.user_attrs.get(REMOVED_ATTR) or [])
    front = front_numbers(study, pending)
    dropped: list[int] = []
    stores: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        ids = t.user_attrs.get(ARTIFACTS_ATTR)
        if t.number in front or t.number in removed or not ids:
            continue
        url = str(t.user_attrs.get(STORE_ATTR))
        try:
            store = stores.get(url) or stores.setdefault(url, open_store(url, create=False))
            for artifact_id in ids.values():
                try:
                    store.remove(artifact_id)
                except ArtifactNotFound:
                    pass
        except Exception as exc:  # never fail a study over housekeeping
            _log.warning("could not remove the models of trial %d from %s: %s", t.number, url, exc)
            continue
        dropped.append(t.number)
    if dropped:
        study.set_user_attr(REMOVED_ATTR, sorted(removed | set(dropped)))
    return dropped


def fetch_model(
    study: optuna.Study,
    trial: FrozenTrial,
    which: str,
    dest: Path,
    *,
    store: str | Path | None = None,
) -> Path:
    """Download ``trial``'s ``which`` model to the file ``dest``; explain any failure.

    ``store`` overrides the store recorded with the trial (e.g. a moved folder).
    """
    where = f"trial {trial.number} of study {study.study_name!r}"
    if trial.state != TrialState.COMPLETE:
        raise ModelFileError(
            f"{where} is {trial.state.name}, not COMPLETE: only finished trials keep models. "
            "Fix: pick a trial from `snt-search pareto`."
        )
    ids = trial.user_attrs.get(ARTIFACTS_ATTR) or {}
    missing = trial.user_attrs.get(MISSING_ATTR) or {}
    if which in missing:
        raise ModelFileError(f"{where} has no stored {which} model: {missing[which]}")
    if which not in ids:
        raise ModelFileError(
            f"{where} has no stored models: its study ran with --keep-models none, or with "
            "an snt-search that did not store models. Fix: run the study "
            "with --keep-models front or all; trials finished from then on keep theirs."
        )
    url = str(store or trial.user_attrs.get(STORE_ATTR))
    try:
        download_artifact(
            artifact_store=open_store(url, create=False),
            file_path=str(dest),
            artifact_id=ids[which],
        )
    except ArtifactNotFound:
        if trial.number in set(study.user_attrs.get(REMOVED_ATTR) or []):
            raise ModelFileError(
                f"{where}'s models were removed: it is off the Pareto front and the study "
                "ran with --keep-models front (the default). Fix: export a trial on the "
                "front (`snt-search pareto`), or run with --keep-models all."
            ) from None
        raise ModelFileError(
            f"{where}'s {which} model (artifact {ids[which]}) is missing from the artifact "
            f"store {url}. Fix: pass the store the study used with --artifacts."
        ) from None
    return dest
