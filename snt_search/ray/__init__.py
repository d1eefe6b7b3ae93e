"""Run studies on Ray: each trial a Ray Tune trial, on this machine or on a cluster.

``run_study_ray`` is the Ray counterpart of :func:`snt_search.driver.run_study`: the same
Optuna study (so ``snt-search pareto`` and optuna-dashboard read Ray studies like local ones),
with trials spread over a cluster, per-trial CPU/GPU shares from the space's ``[resources]``,
per-epoch checkpoints, retries of trials on dead nodes and restoring a stopped driver. Ray is
imported only when a study runs; without it, :class:`RayNotInstalled` says what to install.
See docs/ray.md.
"""

from __future__ import annotations

from .args import add_ray_arguments, options_from_args
from .driver import run_study_ray
from .options import RayNotInstalled, RayOptions, RayStudyError, require_ray

__all__ = [
    "RayNotInstalled",
    "RayOptions",
    "RayStudyError",
    "add_ray_arguments",
    "options_from_args",
    "require_ray",
    "run_study_ray",
]
