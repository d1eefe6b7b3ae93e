"""`snt-search sharpness`: lambda_max (top Hessian eigenvalue) of one model, with diagnostics."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import add_json, console, err_console, parse_sets, print_json

HELP = "estimate lambda_max of a (trained) model on seeded training samples, with diagnostics"
EPILOG = """examples:
  snt-search sharpness --dataset digits --backbone mixer_s --transform snt --samples 256
  snt-search sharpness --dataset digits --backbone mixer_s --transform none \\
      --checkpoint runs/m/model.safetensors --method pyhessian --json

With --checkpoint, the backbone/transform parameters stored in the checkpoint by
`snt-search train` are used (--set overrides them). The samples are the ones a trial with the
same --seed measures on. See docs/sharpness.md for the methods and the result fields."""

_KINDS = ("dataset", "backbone", "transform")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..sharpness import METHODS

    p = sub.add_parser(
        "sharpness",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, help="dataset plugin (see `snt-search plugins`)")
    p.add_argument("--backbone", required=True, help="backbone plugin")
    p.add_argument("--transform", default="none", help="transform plugin (default: none)")
    p.add_argument("--checkpoint", type=Path, help="model.safetensors from `snt-search train`")
    p.add_argument("--samples", type=int, default=512, help="training images (default: 512)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    p.add_argument("--method", choices=METHODS, default="lanczos", help="(default: lanczos)")
    p.add_argument("--top-k", type=int, default=1, help="eigenvalues to report (default: 1)")
    p.add_argument("--max-iter", type=int, default=100, help="max iterations (default: 100)")
    p.add_argument("--tol", type=float, default=1e-3, help="relative tolerance (default: 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed of init, samples and start vector")
    p.add_argument("--data-dir", type=Path, help="where the dataset finds its files")
    p.add_argument("--no-download", action="store_true", help="never download data sets")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="<kind>.<plugin>.<param>=V, e.g. --set backbone.mixer_s.num_blocks=2",
    )
    add_json(p)
    p.set_defaults(run=run)


def _params(args: argparse.Namespace, plugins: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Plugin params: the checkpoint's (when its plugins match), then --set overrides."""
    from ..checkpoint import read_metadata
    from ..registry import get_registry
    from ..space import param_problem, set_option

    params: dict[str, dict[str, Any]] = {}
    if args.checkpoint is not None and args.checkpoint.is_file():
        spec = read_metadata(args.checkpoint).get("spec", {})
        stored = spec.get("plugins", {})
        for kind in ("backbone", "transform"):
            if stored.get(kind) == plugins[kind]:
                params[kind] = dict(spec.get("params", {}).get(kind, {}))
    for key, value in parse_sets(args.set).items():
        parts = key.split(".")
        if len(parts) != 3 or parts[0] not in _KINDS or plugins[parts[0]] != parts[1]:
            raise ValueError(
                f"{set_option(key, value)}: expected <kind>.<plugin>.<param> naming a chosen "
                f"plugin ({', '.join(f'{k}.{v}' for k, v in plugins.items())}), e.g. "
                f"--set backbone.{plugins['backbone']}.<param>=VALUE"
            )
        problem = param_problem(key, value, get_registry())
        if problem is not None:
            raise ValueError(f"{set_option(key, value)}: {problem}")
        params.setdefault(parts[0], {})[parts[2]] = value
    return params


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import load_checkpoint
    from ..config import Budget
    from ..data import normalize
    from ..pipeline import build_model, load_data
    from ..registry import get_registry
    from ..sharpness import draw_batches, estimate_lambda_max
    from ..trial_spec import TrialSpec

    if args.samples < 1 or args.batch_size < 1:
        raise ValueError(
            f"--samples and --batch-size must be >= 1, got {args.samples} and {args.batch_size}"
        )
    registry = get_registry()
    plugins = {kind: getattr(args, kind) for kind in _KINDS}
    for kind, name in plugins.items():
        registry.get(kind, name)  # unknown names fail here, with the alternatives
    spec = TrialSpec(
        plugins=plugins,
        params=_params(args, plugins),
        budget=Budget(name="sharpness"),
        seed=args.seed,
        data_dir=args.data_dir,
        download=not args.no_download,
        device=args.device,
    )
    data = load_data(spec, registry)
    model, _ = build_model(spec, data, registry)
    device = torch.device(args.device)
    model.to(device)
    if args.checkpoint is not None:
        load_checkpoint(args.checkpoint, model, map_location=device)
    n = min(args.samples, len(data.train_y))
    idx = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(args.seed))[:n]
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    x = normalize(data.train_x[idx], mean, std)
    batches = draw_batches(x, data.train_y[idx], samples=n, batch_size=args.batch_size, seed=0)
    result = estimate_lambda_max(
        model,
        batches,
        method=args.method,
        top_k=args.top_k,
        max_iter=args.max_iter,
        tol=args.tol,
        seed=args.seed,
    )
    if args.json:
        print_json(
            {
                **result.as_dict(),
                **plugins,
                "params": spec.params,
                "checkpoint": str(args.checkpoint) if args.checkpoint else None,
            }
        )
        return 0
    values = ", ".join(f"{v:.6g}" for v in result.eigenvalues)
    console.print(
        f"lambda_max [bold]{result.lambda_max:.6g}[/]"
        + (f" (top {args.top_k}: {values})" if args.top_k > 1 else "")
        + f"  {args.dataset} x {args.backbone} x {args.transform}"
        + (f" from {args.checkpoint}" if args.checkpoint else " (untrained)")
    )
    console.print(
        f"{result.method}/{result.backend}: {result.iterations} iterations, {result.hvp_count} "
        f"HVPs, relative residual {result.relative_residual:.2e}, estimated error "
        f"{result.error_estimate:.1e}, {result.samples} samples, "
        f"{result.wall_time_s:.1f}s"
    )
    if not result.converged:
        err_console.print(
            f"[yellow]warning:[/] not converged within --max-iter {args.max_iter} (tol "
            f"{args.tol}); raise --max-iter or --tol, and trust lambda_max only to about the "
            f"relative residual"
        )
    return 0
