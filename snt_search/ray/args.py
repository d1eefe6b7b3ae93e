"""Command-line flags of the Ray driver, for ``snt-search study``.

``add_ray_arguments(parser)`` adds ``--driver`` and the ``--ray-*`` flags;
``options_from_args(args)`` turns them into :class:`RayOptions` (None for ``--driver local``)
and checks that Ray is installed before a study starts.
"""

from __future__ import annotations

import argparse

from .options import RayOptions, RayStudyError, require_ray

__all__ = ["add_ray_arguments", "options_from_args"]


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--driver {local,ray}``, ``--ray-address``, ``--ray-storage`` and retry flags."""
    group = parser.add_argument_group(
        "Ray", "run trials as Ray Tune trials on this machine or a cluster (docs/ray.md)"
    )
    group.add_argument(
        "--driver",
        choices=("local", "ray"),
        default="local",
        help="local: trials in this process (default); ray: each trial a Ray Tune trial",
    )
    group.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="join this running Ray cluster (or 'auto'); default: start Ray on this machine",
    )
    group.add_argument(
        "--ray-storage",
        metavar="PATH|URI",
        help="where Ray keeps checkpoints and experiment state; on a cluster, storage every "
        "node reaches (NFS path, s3://..., gs://...) (default: <out>/ray)",
    )
    group.add_argument(
        "--ray-max-failures",
        type=int,
        default=3,
        metavar="N",
        help="retry a trial whose worker or node died up to N times from its checkpoint (default: 3)",
    )
    group.add_argument(
        "--ray-max-concurrent",
        type=int,
        metavar="N",
        help="run at most N trials at once (default: as many as the cluster's resources allow)",
    )


def options_from_args(args: argparse.Namespace) -> RayOptions | None:
    """The :class:`RayOptions` the flags ask for, or None with ``--driver local``.

    Raises :class:`RayStudyError` for Ray flags without ``--driver ray`` and
    :class:`RayNotInstalled` when ``--driver ray`` is asked for without Ray installed.
    """
    if args.driver != "ray":
        given = [
            flag
            for flag, value in (
                ("--ray-address", args.ray_address),
                ("--ray-storage", args.ray_storage),
                ("--ray-max-concurrent", args.ray_max_concurrent),
            )
            if value is not None
        ]
        if given:
            raise RayStudyError(f"{given[0]} only applies to --driver ray; add --driver ray")
        return None
    if getattr(args, "workers", 1) > 1:
        raise RayStudyError(
            f"--workers {args.workers} starts local processes; with --driver ray the cluster runs "
            f"trials in parallel (as many as its CPUs/GPUs and the space's [resources] allow): "
            f"leave --workers out, or use --ray-max-concurrent N to cap them"
        )
    require_ray()
    return RayOptions(
        address=args.ray_address,
        storage_path=args.ray_storage,
        max_failures=args.ray_max_failures,
        max_concurrent=args.ray_max_concurrent,
    )
