"""Benchmark: our default lambda_max estimator vs PyHessian's power iteration, side by side.

For MLP-Mixer-S (SNT paper Sec. 5.2.2) and CIFAR ResNet-20 (He et al. 2016), built from the
``mixer_s``/``resnet20`` backbone plugins and trained for ``--train-steps`` Adam steps (0: at
initialisation), both estimators run on the same samples, batches, loss, tolerance and
``max_iter``:

* ours: ``estimate_lambda_max(model, batches, tol=..., max_iter=...)`` with every default
  (Lanczos, gradient-tilted start, auto backend; the timing includes the backend choice);
* PyHessian (Yao et al. 2020): ``hessian(model, criterion, data|dataloader=..., cuda=False)
  .eigenvalues(maxIter, tol, top_n=1)``, its HVPs counted without changing its work.

Printed per model: lambda_max of each and their relative difference, HVP counts and wall times
with their ratios (PyHessian / ours), and with ``--reference`` the error of each against a
tight Lanczos run (tol 1e-6). ``--matched`` (with ``--reference``) also times PyHessian to
*our* accuracy: its power steps are watched (``on_step``) and the run is stopped at the first
estimate as close to the reference as ours (at least 1e-5, the reference's own precision),
i.e. PyHessian with an oracle stopping rule, best of ``--repeats`` runs. Runs offline on
scikit-learn's digits by default; ``--data-dir ../shared/datasets/cifar10-subset`` uses
real CIFAR-10 images instead. ``--device cuda`` runs the models and both estimators on a GPU
(the batches are moved there once, before either is timed; the clock is read after
``torch.cuda.synchronize()``; wall clock only).

    python bench/sharpness.py --samples 128 --threads 1 --clock cpu --reference
    python bench/sharpness.py --samples 512 --device cuda --reference --matched
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snt_search.allocator import reuse_freed_memory
from snt_search.registry import get_registry
from snt_search.sharpness import clear_backend_cache, draw_batches, estimate_lambda_max
from snt_search.sharpness.reference import pyhessian_eigenvalues
from snt_search.specs import Backbone

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _builtin(name: str) -> Callable[[], nn.Module]:
    """Constructor of a built-in backbone plugin at its paper defaults, 10 classes, 32x32x3."""

    def build() -> nn.Module:
        backbone = get_registry().get("backbone", name)
        assert isinstance(backbone, Backbone)
        return backbone.build(num_classes=10, image_size=32, in_chans=3)

    return build


# mixer_s: timm MlpMixer(num_classes=10, img_size=32, patch_size=4, num_blocks=8, embed_dim=128,
# mlp_ratio=(0.5, 4.0)), 1.13M parameters; resnet20: CIFAR ResNet-20 (He et al. 2016), 0.27M.
MODELS = {name: _builtin(name) for name in ("mixer_s", "resnet20")}


def load_data(data_dir: Path | None) -> tuple[Tensor, Tensor, str]:
    """Normalised float images [N, 3, 32, 32] and labels: CIFAR-10 subset or sklearn digits."""
    if data_dir is not None:
        from torchvision.datasets import ImageFolder
        from torchvision.transforms.functional import pil_to_tensor

        folder = ImageFolder(str(data_dir / "train"))
        x = torch.stack([pil_to_tensor(img) for img, _ in folder]).float() / 255
        y = torch.tensor(folder.targets)
        name = f"CIFAR-10 subset ({data_dir})"
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.from_numpy(digits.images).float().unsqueeze(1) / 16
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).expand(
            -1, 3, -1, -1
        )
        y = torch.from_numpy(digits.target).long()
        name = "scikit-learn digits upscaled to 32x32x3"
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    if data_dir is None:
        mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
    return ((x - mean) / std).contiguous(), y, name


def pretrain(model: nn.Module, x: Tensor, y: Tensor, steps: int, seed: int) -> float:
    """A few Adam steps so lambda_max is measured away from initialisation; last loss.

    The batches are drawn on the CPU (the same ones on every device) and moved to the model's
    device."""
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,), generator=gen)
        loss = F.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def sync(device: str) -> None:
    """Wait for the GPU's queued work (a no-op on the CPU), so a clock read after it is fair."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(clock: str, fn: Callable[[], Any], device: str = "cpu") -> tuple[Any, float]:
    """``fn()`` and its duration: wall clock, or this process's CPU time (``cpu``); on CUDA,
    from an idle GPU until its last kernel has finished."""
    now = time.process_time if clock == "cpu" else time.perf_counter
    sync(device)
    start = now()
    out = fn()
    sync(device)
    return out, now() - start


def run_pyhessian(
    model: nn.Module, batches: list[tuple[Tensor, Tensor]], args: argparse.Namespace
) -> tuple[float, int, float]:
    """PyHessian's power iteration on the batches: (lambda_max, HVPs, seconds)."""
    out, seconds = timed(
        args.clock,
        lambda: pyhessian_eigenvalues(
            model,
            batches,
            F.cross_entropy,
            top_k=1,
            max_iter=args.max_iter,
            tol=args.tol,
            seed=args.seed,
        ),
        args.device,
    )
    return out.eigenvalues[0], out.steps[0], seconds


class _Reached(Exception):
    """Raised from PyHessian's step hook once its estimate is accurate enough."""


def pyhessian_to_accuracy(
    model: nn.Module,
    batches: list[tuple[Tensor, Tensor]],
    reference: float,
    target: float,
    args: argparse.Namespace,
) -> tuple[float, int, bool]:
    """PyHessian's (seconds, steps) to its first estimate within ``target`` of ``reference``.

    The third value is False when ``--max-iter`` steps never got there (the seconds are then
    those of all the steps).
    """
    now = time.process_time if args.clock == "cpu" else time.perf_counter
    steps = 0

    def check(estimate: float) -> None:
        nonlocal steps
        steps += 1
        if abs(estimate - reference) <= target * abs(reference):
            raise _Reached

    sync(args.device)
    start = now()
    try:
        pyhessian_eigenvalues(
            model,
            batches,
            F.cross_entropy,
            top_k=1,
            max_iter=args.max_iter,
            tol=1e-12,
            seed=args.seed,
            on_step=check,
        )
    except _Reached:
        sync(args.device)
        return now() - start, steps, True
    sync(args.device)
    return now() - start, steps, False


def bench_model(name: str, x: Tensor, y: Tensor, args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    model = MODELS[name]().to(args.device)
    loss = pretrain(model, x, y, args.train_steps, args.seed)
    model.eval()
    batches = draw_batches(x, y, samples=args.samples, batch_size=args.batch_size, seed=args.seed)
    # Moved once, before timing: neither estimator pays a host-to-device copy per HVP.
    batches = [(bx.to(args.device), by.to(args.device)) for bx, by in batches]
    rows: dict[str, Any] = {"model": name, "device": args.device, "train_loss": loss}
    ours_t, ref_t = [], []
    for rep in range(args.repeats):  # alternate the two so load changes hit both alike
        clear_backend_cache()  # every repeat pays the auto-backend choice, as a first call does
        ours, ours_time = timed(
            args.clock,
            lambda: estimate_lambda_max(
                model, batches, tol=args.tol, max_iter=args.max_iter, seed=args.seed
            ),
            args.device,
        )
        ours_t.append(ours_time)
        ph_value, ph_hvps, ph_time = run_pyhessian(model, batches, args)
        ref_t.append(ph_time)
        print(
            f"  [{name} repeat {rep}] ours {ours_time:.1f}s ({ours.hvp_count} HVPs, "
            f"{ours.backend}), pyhessian {ph_time:.1f}s ({ph_hvps} HVPs)",
            flush=True,
        )
    rows.update(
        ours_lambda=ours.lambda_max,
        ours_hvps=ours.hvp_count,
        ours_s=min(ours_t),
        ours_converged=ours.converged,
        ours_residual=ours.relative_residual,
        ours_backend=ours.backend,
        pyhessian_lambda=ph_value,
        pyhessian_hvps=ph_hvps,
        pyhessian_s=min(ref_t),
        rel_diff=abs(ours.lambda_max - ph_value) / abs(ph_value),
    )
    if args.reference:
        ref = estimate_lambda_max(
            model,
            batches,
            tol=1e-6,
            max_iter=args.max_iter,
            seed=args.seed + 1,
            backend=ours.backend.removesuffix("+cache"),
        )
        rows.update(
            reference_lambda=ref.lambda_max,
            reference_hvps=ref.hvp_count,
            ours_err=abs(ours.lambda_max - ref.lambda_max) / abs(ref.lambda_max),
            pyhessian_err=abs(ph_value - ref.lambda_max) / abs(ref.lambda_max),
        )
    if args.matched:
        target = max(rows["ours_err"], 1e-5)
        runs = [
            pyhessian_to_accuracy(model, batches, ref.lambda_max, target, args)
            for _ in range(args.repeats)
        ]
        seconds, steps, reached = min(runs)
        rows.update(matched_target=target, matched_s=seconds, matched_hvps=steps)
        rows.update(matched_reached=reached)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=256, help="samples the Hessian averages")
    parser.add_argument("--batch-size", type=int, default=128, help="samples per batch")
    parser.add_argument("--tol", type=float, default=1e-3, help="tolerance given to both")
    parser.add_argument("--max-iter", type=int, default=100, help="max HVPs given to both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=100, help="Adam steps before measuring")
    parser.add_argument("--models", default="mixer_s,resnet20", help="comma-separated subset")
    parser.add_argument("--data-dir", type=Path, help="ImageFolder CIFAR-10 (train/<class>/*.png)")
    parser.add_argument("--repeats", type=int, default=1, help="alternated runs; best time kept")
    parser.add_argument("--reference", action="store_true", help="also run Lanczos at tol 1e-6")
    parser.add_argument(
        "--matched",
        action="store_true",
        help="also time PyHessian to our accuracy (needs --reference)",
    )
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall clock, or process CPU time (robust to other jobs on a shared machine; "
        "use with --threads 1)",
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:N]")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument(
        "--malloc",
        choices=("train", "default"),
        default="train",
        help="train: freed host memory kept for reuse, as in a study's worker (train() sets "
        "it before lambda_max is measured); default: glibc's own",
    )
    args = parser.parse_args()
    if args.matched and not args.reference:
        parser.error("--matched compares accuracies against the reference: add --reference")
    device = torch.device(args.device)
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device {args.device}: only cpu and cuda are supported")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    if device.type == "cuda" and args.clock == "cpu":
        parser.error("--clock cpu counts this process's CPU time, not the GPU's: use --clock wall")
    if args.malloc == "default":
        os.environ["SNT_SEARCH_MALLOC"] = "default"
    malloc = reuse_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y, data_name = load_data(args.data_dir)
    print(
        f"data: {data_name}; samples={args.samples} batch_size={args.batch_size} tol={args.tol} "
        f"max_iter={args.max_iter} train_steps={args.train_steps} clock={args.clock}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
        f"device {args.device}"
        f"{f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''}; "
        f"{malloc}",
        flush=True,
    )
    rows = [bench_model(name, x, y, args) for name in args.models.split(",")]
    header = (
        f"{'model':9} {'lambda ours':>12} {'lambda PyH':>12} {'rel diff':>9} {'HVPs ours':>9} "
        f"{'HVPs PyH':>9} {'HVP ratio':>9} {'s ours':>8} {'s PyH':>8} {'speedup':>8}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['model']:9} {r['ours_lambda']:12.4f} {r['pyhessian_lambda']:12.4f} "
            f"{r['rel_diff']:9.2%} {r['ours_hvps']:9d} {r['pyhessian_hvps']:9d} "
            f"{r['pyhessian_hvps'] / r['ours_hvps']:8.2f}x {r['ours_s']:8.1f} "
            f"{r['pyhessian_s']:8.1f} {r['pyhessian_s'] / r['ours_s']:7.2f}x"
        )
        if args.reference:
            print(
                f"{'':9} reference (Lanczos tol 1e-6, {r['reference_hvps']} HVPs) "
                f"{r['reference_lambda']:.4f}: error ours {r['ours_err']:.3%}, "
                f"PyHessian {r['pyhessian_err']:.3%}"
            )
        if args.matched:
            reached = "" if r["matched_reached"] else f" not reached in {args.max_iter} steps:"
            print(
                f"{'':9} PyHessian to our accuracy ({r['matched_target']:.3%}):{reached} "
                f"{r['matched_hvps']} HVPs, {r['matched_s']:.1f} s, "
                f"{r['matched_s'] / r['ours_s']:.2f}x our time"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
