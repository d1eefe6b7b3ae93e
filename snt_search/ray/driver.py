"""The Ray driver: the local driver's study, with each trial a Ray Tune trial on a cluster.

``run_study_ray(space, options, ray_options)`` behaves like :func:`snt_search.driver.run_study`
(same study, attributes, resuming and Pareto files) but runs trials as Ray Tune trials, each
with the CPUs/GPUs of the space's ``[resources]``, reporting every epoch with a checkpoint.

Fault tolerance, in three layers:

- a trial whose worker or node dies is retried from its last epoch checkpoint, up to
  ``max_failures`` times (``FailureConfig``); after that its Optuna trial is failed with
  ``ray_error`` and its parameters are queued again;
- a driver that stops (Ctrl-C, killed) leaves its experiment marked unfinished in the study
  (user attribute ``ray_experiment_state``); the same command restores it
  (``Tuner.restore``): finished trials stay, running ones resume from their checkpoints, and
  the searcher gets back its live trials and its sampler's random state;
- a trial the restored experiment does not know (asked just before the driver died) is
  failed and queued again, so every asked trial ends finished or retried.

One Ray driver per study at a time: the cluster is the parallelism.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from ..driver import (
    RESUME_HINT,
    StudyAborted,
    StudyOptions,
    StudyOutcome,
    finished_counts,
    open_study,
    record_study,
)
from ..pareto import front_rows, write_front
from ..progress import StudyProgress
from ..registry import Registry, get_registry
from ..resources import TrialResources
from ..space import Space
from .experiments import aborted, run_experiments
from .options import RayOptions, RayStudyError, require_ray

__all__ = ["run_study_ray"]


def run_study_ray(
    space: Space,
    options: StudyOptions,
    ray_options: RayOptions | None = None,
    *,
    registry: Registry | None = None,
) -> StudyOutcome:
    """Run (or resume) ``space`` on Ray until ``options.n_trials`` trials have finished.

    Raises :class:`RayStudyError` when the space or device cannot run on the cluster, or when
    trials kept failing on Ray so that the study is still short of ``n_trials`` (their
    parameters are queued again: the same command resumes); :class:`StudyAborted` after
    ``MAX_UNEXPECTED_IN_A_ROW`` unexpected trial errors in a row, like the local driver; and
    ``KeyboardInterrupt`` when the experiment was stopped before its trials ended.
    """
    require_ray()
    import ray

    ray_options = ray_options or RayOptions()
    space.check(registry or get_registry())
    space.budget(options.budget)
    _check_device(space.resources, options.device)
    if options.data_dir is not None:  # Ray runs trials in their own working directories
        options = replace(options, data_dir=options.data_dir.resolve())
    study = open_study(space, options)
    before = finished_counts(study)
    out_dir = options.out(study.study_name)
    storage_path = ray_options.storage_path or str((out_dir / "ray").resolve())

    remaining = max(options.n_trials - before["total"], 0)
    how = _connect(ray_options, quiet=not options.show_progress)
    try:
        from .progress import showing

        if how == "started":
            _check_fits(space.resources)
        with (
            StudyProgress(remaining, space.objectives, enabled=options.show_progress) as display,
            showing(display, study, before["total"]),
        ):
            display.resuming(study, before["total"], options.n_trials)
            errors = run_experiments(study, space, options, ray_options, storage_path)
            display.show_study(study, before["total"])
    finally:
        if how != "reused":  # disconnect, and stop a Ray this driver started
            ray.shutdown()

    after = finished_counts(study)
    record_study(study)
    rows = front_rows(study)
    files = write_front(rows, out_dir)
    why = aborted(study)
    if why:
        raise StudyAborted(f"{why}. Fix it, then {RESUME_HINT}.")
    if errors and after["total"] >= options.n_trials:
        logging.getLogger(__name__).warning(
            "%d trial(s) failed on Ray and ran again from the start (first: %s)",
            len(errors),
            errors[0],
        )
    elif errors:
        raise RayStudyError(
            f"{len(errors)} trial(s) failed on Ray after {ray_options.max_failures} retries each "
            f"(first: {errors[0]}); finished trials are stored in {options.storage} and the "
            f"failed ones are queued again: fix the cause and {RESUME_HINT}"
        )
    return StudyOutcome(
        study_name=study.study_name,
        storage=options.storage,
        ran=after["total"] - before["total"],
        finished=after["complete"],
        failed=after["failed"],
        pruned=after["pruned"],
        front=rows,
        files=files,
    )


def _connect(ray_options: RayOptions, *, quiet: bool) -> str:
    """Use the caller's Ray (``"reused"``), join the cluster ``address`` or ``RAY_ADDRESS`` names
    (``"joined"``), or start Ray on this machine (``"started"``)."""
    import ray

    if ray.is_initialized():
        return "reused"
    if ray_options.address is not None or os.environ.get("RAY_ADDRESS"):
        ray.init(
            address=ray_options.address, log_to_driver=not quiet, logging_level=logging.WARNING
        )
        return "joined"
    ray.init(
        num_cpus=ray_options.num_cpus,
        num_gpus=ray_options.num_gpus,
        object_store_memory=ray_options.object_store_memory,
        include_dashboard=False,
        log_to_driver=not quiet,
        logging_level=logging.WARNING,
    )
    return "started"


def _check_device(resources: TrialResources, device: str) -> None:
    if resources.gpus == 0 and device.startswith("cuda"):
        raise RayStudyError(
            f"--device {device} trains on a GPU but the space reserves no GPU per trial, so Ray "
            f"hides every GPU from it; add [resources] gpus = 1 (or a share such as 0.25)"
        )
    if resources.gpus > 0 and not device.startswith("cuda"):
        raise RayStudyError(
            f"the space reserves [resources] gpus = {resources.gpus:g} per trial but --device "
            f"{device} trains on the CPU; pass --device cuda (or set gpus = 0)"
        )


def _check_fits(resources: TrialResources) -> None:
    """On a Ray this driver started, refuse trials larger than the machine (they would wait)."""
    import ray

    have = ray.cluster_resources()
    for key, want in (("CPU", resources.cpus), ("GPU", resources.gpus)):
        if want > have.get(key, 0.0):
            raise RayStudyError(
                f"each trial asks for {want:g} {key}(s) ([resources] in the space) but this "
                f"machine's Ray has {have.get(key, 0.0):g}; lower [resources] or join a bigger "
                f"cluster with --ray-address HOST:PORT"
            )
