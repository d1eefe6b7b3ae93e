"""Training-step overhead of a transform (default ``snt``) against ``none``, per backbone.

For each backbone both models are built from the same seed, then timed side by side in one
run: a training step is forward + cross-entropy + backward + optimizer step (the ``adam``
plugin, as ``train()`` builds it: torch's fused step) on one fixed batch.
After warm-up steps the two models alternate (ABBA order, so drift in machine load hits both
alike) and the median of the repeats is reported with the ratio transform / none, and beside
it the quartiles of the per-repeat ratios (each repeat times both back to back), which show
how steady the machine was. The SNT paper's claim is "little to no training overhead"
(Sec. 4); our target is <= 1.05x on CPU.

``--device cuda`` times the same steps on a GPU: the clock is read only after
``torch.cuda.synchronize()``, before and after each step, so a step's time is its kernels'
time, not the time to queue them (wall clock only).

    python bench/transform_overhead.py                       # as train() runs (auto precision)
    python bench/transform_overhead.py --precision fp32 --memory-format contiguous
    python bench/transform_overhead.py --backbones resnet20 mixer_s --batch-size 64 --repeats 9
    python bench/transform_overhead.py --malloc default      # glibc's malloc as it comes
    python bench/transform_overhead.py --device cuda --repeats 21 --json runs/overhead.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from snt_search.allocator import reuse_freed_memory
from snt_search.precision import (
    MEMORY_FORMATS,
    PRECISIONS,
    autocast_dtype,
    depthwise_fp32,
    fp32_depthwise,
    use_channels_last,
)
from snt_search.registry import get_registry
from snt_search.specs import Backbone, Optimizer, Transform
from snt_search.training import model_is_channels_last

# "cpu" counts the CPU time of this process only: on a shared machine it leaves out the time
# other jobs hold the cores, which wall-clock time cannot (use it with --threads 1).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
DEFAULT_BACKBONES = ("resnet20", "mixer_s", "mobilenet_v1", "resnet18", "vit_tiny")


def train_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    amp: torch.dtype | None = None,
) -> None:
    """One step as ``snt_search.training.train`` takes it (autocast when ``amp``)."""
    opt.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
        logits = model(x)
    nn.functional.cross_entropy(logits.float(), y).backward()
    opt.step()


def build(
    backbone: str,
    transform: str,
    classes: int,
    size: int,
    memory_format: str = "contiguous",
    device: str = "cpu",
) -> nn.Module:
    reg = get_registry()
    plugin = reg.get("backbone", backbone)
    assert isinstance(plugin, Backbone)
    torch.manual_seed(0)
    model = plugin.build(num_classes=classes, image_size=size, in_chans=3)
    t = reg.get("transform", transform)
    assert isinstance(t, Transform)
    t.apply(model)
    model.to(device)
    if use_channels_last(model, memory_format):
        model.to(memory_format=torch.channels_last)
    return model.train()


def timed(step: Callable[[], None], clock: Callable[[], float], device: str = "cpu") -> float:
    """Seconds of one ``step``; on CUDA, from an idle GPU until its kernels have finished."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = clock()
    step()
    if cuda:
        torch.cuda.synchronize(device)
    return clock() - start


def compare(backbone: str, transform: str, args: argparse.Namespace) -> dict[str, float]:
    with contextlib.ExitStack() as stack:
        return _compare(backbone, transform, args, stack)


def _compare(
    backbone: str, transform: str, args: argparse.Namespace, stack: contextlib.ExitStack
) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, generator=g)
    y = torch.randint(0, args.classes, (args.batch_size,), generator=g)
    x, y = x.to(args.device), y.to(args.device)  # the same data on every device
    steps: dict[str, Callable[[], None]] = {}
    params: dict[str, int] = {}
    for name in ("none", transform):
        model = build(
            backbone, name, args.classes, args.image_size, args.memory_format, args.device
        )
        amp = autocast_dtype(args.precision, args.device)
        if fp32_depthwise(args.precision, args.device, model):  # as train() does
            stack.enter_context(depthwise_fp32(model))
        xx = x.contiguous(memory_format=torch.channels_last) if model_is_channels_last(model) else x
        plugin = get_registry().get("optimizer", args.optimizer)  # as train() builds it
        assert isinstance(plugin, Optimizer)
        opt = plugin.build(list(model.parameters()), lr=1e-3, weight_decay=0.0)
        steps[name] = functools.partial(train_step, model, opt, xx, y, amp)
        params[name] = sum(p.numel() for p in model.parameters())
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(args.repeats):
        order = list(steps) if r % 2 == 0 else list(reversed(steps))
        for name in order:
            times[name].append(timed(steps[name], CLOCKS[args.clock], args.device))
    base, new = (statistics.median(times[n]) for n in ("none", transform))
    # Each repeat times the two models back to back: its own ratio shows how much the
    # machine drifted during the run (the spread printed beside the median ratio).
    pairs = sorted(b / a for a, b in zip(times["none"], times[transform], strict=True))
    q = statistics.quantiles(pairs, n=4) if len(pairs) > 1 else [pairs[0]] * 3
    return {
        "params_none": params["none"],
        "params_new": params[transform],
        "ms_none": 1e3 * base,
        "ms_new": 1e3 * new,
        "ratio": new / base,
        "ratio_q1": q[0],
        "ratio_q3": q[2],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=list(DEFAULT_BACKBONES))
    ap.add_argument("--transform", default="snt")
    ap.add_argument("--optimizer", default="adam", help="optimizer plugin (single-pass ones)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    ap.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:N]")
    ap.add_argument("--json", type=Path, help="also write the header and rows to this JSON file")
    ap.add_argument(
        "--precision", choices=PRECISIONS, default="auto", help="as train.precision (auto)"
    )
    ap.add_argument(
        "--memory-format",
        choices=MEMORY_FORMATS,
        default="auto",
        help="as train.memory_format (auto: channels_last for conv nets)",
    )
    ap.add_argument(
        "--malloc",
        choices=("train", "default"),
        default="train",
        help="train: freed host memory kept for reuse, as train() sets it; default: glibc's own",
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    if device.type == "cuda" and args.clock == "cpu":
        ap.error("--clock cpu counts this process's CPU time, not the GPU's: use --clock wall")
    if device.type not in ("cpu", "cuda"):
        ap.error(f"--device {args.device}: only cpu and cuda are supported")
    if args.malloc == "default":
        os.environ["SNT_SEARCH_MALLOC"] = "default"
    malloc = reuse_freed_memory()
    warnings.filterwarnings("ignore", message="snt: .* has no residual block")  # MobileNet-V1
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    depthwise = args.precision == "auto" and device.type == "cpu"
    header = (
        f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cpus, {torch.get_num_threads()} threads, load avg "
        f"{os.getloadavg()[0]:.1f}; device {args.device}{gpu}; batch {args.batch_size}x3x"
        f"{args.image_size}x{args.image_size}, warmup {args.warmup}, median of {args.repeats}, "
        f"{args.clock} clock, precision {args.precision} (autocast "
        f"{autocast_dtype(args.precision, args.device)}; "
        f"{'depthwise convs in fp32' if depthwise else ''}), "
        f"memory format {args.memory_format}, optimizer {args.optimizer}; {malloc}"
    )
    print(header)
    print(f"{'backbone':<14}{'params none':>12}{'params ' + args.transform:>12}"
          f"{'ms none':>10}{'ms ' + args.transform:>10}{'ratio':>8}"
          f"{'per-repeat ratios, quartiles':>30}")  # fmt: skip
    rows = []
    for backbone in args.backbones:
        r = compare(backbone, args.transform, args)
        rows.append({"backbone": backbone, "transform": args.transform, **r})
        print(
            f"{backbone:<14}{r['params_none']:>12,}{r['params_new']:>12,}"
            f"{r['ms_none']:>10.1f}{r['ms_new']:>10.1f}{r['ratio']:>7.3f}x"
            f"{r['ratio_q1']:>21.3f}x – {r['ratio_q3']:.3f}x",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
