"""How a study runs on Ray: which cluster, where Ray Tune keeps checkpoints, how failures retry.

:class:`RayOptions` holds what the Ray driver needs beyond :class:`~snt_search.driver.StudyOptions`
(which says what to run and where the Optuna study lives). It imports nothing from Ray, so the
command line can build it, and ``snt_search.ray`` can be imported, without Ray installed;
:func:`require_ray` is the one place that says what to install.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

__all__ = ["RayNotInstalled", "RayOptions", "RayStudyError", "require_ray"]

INSTALL_HINT = 'pip install "snt-search[ray]"'


class RayStudyError(ValueError):
    """A study could not run or finish on Ray; the message says the fix and how to resume.

    A ``ValueError``, so the command line prints it as ``error: ...`` without a traceback.
    """


class RayNotInstalled(RayStudyError, ImportError):
    """Ray Tune is not importable; the message says what to install."""


def require_ray() -> None:
    """Raise :class:`RayNotInstalled` unless ``ray.tune`` can be imported."""
    try:
        found = importlib.util.find_spec("ray") is not None
        found = found and importlib.util.find_spec("ray.tune") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise RayNotInstalled(
            f"--driver ray needs Ray Tune, which is not installed; run: {INSTALL_HINT} "
            f"(or pip install 'ray[tune]>=2.9'), then rerun the same command"
        )


@dataclass(frozen=True)
class RayOptions:
    """Where and how the Ray driver runs a study.

    ``address`` None starts a Ray instance on this machine (or joins the one ``RAY_ADDRESS``
    names, as under ``ray job submit``); ``"HOST:PORT"`` or ``"auto"`` joins a running cluster.
    ``storage_path`` is where Ray Tune writes checkpoints and experiment state (default
    ``<out>/ray``); on a multi-node cluster it must be storage every node reaches (NFS path,
    ``s3://``, ``gs://``). ``max_failures`` is how often a trial whose worker or node died is
    retried from its last checkpoint. ``num_cpus``/``num_gpus``/``object_store_memory`` size a
    Ray instance this driver starts itself and are refused with ``address``.
    """

    address: str | None = None
    storage_path: str | None = None
    max_failures: int = 3
    max_concurrent: int | None = None  # None: as many trials as the cluster's resources allow
    num_cpus: int | None = None
    num_gpus: int | None = None
    object_store_memory: int | None = None

    def __post_init__(self) -> None:
        if self.max_failures < 0:
            raise RayStudyError(
                f"--ray-max-failures must be >= 0 (0: never retry), got {self.max_failures}"
            )
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise RayStudyError(
                f"--ray-max-concurrent must be >= 1 (or left out), got {self.max_concurrent}"
            )
        local = {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "object_store_memory": self.object_store_memory,
        }
        given = [k for k, v in local.items() if v is not None]
        if self.address is not None and given:
            raise RayStudyError(
                f"RayOptions({given[0]}=...) sizes a Ray instance this driver starts, but "
                f"address={self.address!r} joins an existing cluster; size the cluster with "
                f"`ray start` instead, or leave the address out"
            )
