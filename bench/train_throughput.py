"""Training throughput: snt-search's tensor loop vs a conventional DataLoader + PIL loop.

Both train the same model (Mixer-S by default) with the same optimizer, batch size and
augmentation (random crop with 4-pixel padding + horizontal flip, normalisation) on the same
images; only the input pipeline differs. Printed side by side from one run:

- images/s of each and their ratio (target >= 1.5x on CPU), the tensor loop both as
  ``train()`` runs it (``train.precision``/``train.memory_format`` "auto") and in fp32 NCHW
  (so the input pipeline's share of the gain shows on its own);
- the share of our loop's step time spent outside forward/backward/optimizer step (target < 5%).

    python bench/train_throughput.py                                  # digits, offline
    python bench/train_throughput.py --data-dir ../shared/datasets/cifar10-subset
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from snt_search.allocator import reuse_freed_memory
from snt_search.data import TensorLoader
from snt_search.precision import autocast_dtype, depthwise_fp32, fp32_depthwise, use_channels_last
from snt_search.registry import get_registry
from snt_search.specs import DataBundle, DataRequest
from snt_search.training import model_is_channels_last


def load(data_dir: Path | None) -> DataBundle:
    registry = get_registry()
    if data_dir is not None:
        return registry.get("dataset", "imagefolder").load(DataRequest(data_dir=data_dir))  # type: ignore[attr-defined,no-any-return]
    return registry.get("dataset", "digits").load(DataRequest())  # type: ignore[attr-defined,no-any-return]


class PILImages(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """The conventional way: one PIL image per item, torchvision transforms per image."""

    def __init__(self, data: DataBundle) -> None:
        self.images = [Image.fromarray(x.permute(1, 2, 0).numpy()) for x in data.train_x]
        self.labels = data.train_y.tolist()
        self.tf = transforms.Compose(
            [
                transforms.RandomCrop(data.image_size, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(data.mean, data.std),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.tf(self.images[i]), self.labels[i]


def step(model, opt, x, y, amp: torch.dtype | None) -> None:  # type: ignore[no-untyped-def]
    """One training step as ``snt_search.training.train`` takes it (autocast when ``amp``)."""
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):
        logits = model(x)
    F.cross_entropy(logits.float(), y).backward()
    opt.step()


def run(batches, model, opt, steps: int, warmup: int, amp=None) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """Return (wall seconds, seconds in forward/backward/step, images) over ``steps`` steps."""
    it = iter(batches)
    nhwc = model_is_channels_last(model)
    for _ in range(warmup):
        x, y = next(it)
        step(model, opt, x.contiguous(memory_format=torch.channels_last) if nhwc else x, y, amp)
    compute = 0.0
    images = 0
    start = time.perf_counter()
    for _ in range(steps):
        x, y = next(it)
        if nhwc:  # the layout change is part of the input pipeline's time, as in train()
            x = x.contiguous(memory_format=torch.channels_last)
        t = time.perf_counter()
        step(model, opt, x, y, amp)
        compute += time.perf_counter() - t
        images += len(y)
    return time.perf_counter() - start, compute, images


def cycle(loader):  # type: ignore[no-untyped-def]
    while True:
        yield from loader


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, help="ImageFolder with train/ and test/ (default: digits)"
    )
    parser.add_argument("--backbone", default="mixer_s")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader workers of the conventional loop"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternate the two loops this many times"
    )
    parser.add_argument(
        "--malloc",
        choices=("train", "default"),
        default="train",
        help="train: freed host memory kept for reuse, as train() sets it (for both loops: it "
        "is a process setting); default: glibc's own",
    )
    args = parser.parse_args()
    if args.malloc == "default":
        os.environ["SNT_SEARCH_MALLOC"] = "default"
    print(f"# {reuse_freed_memory()}", flush=True)

    data = load(args.data_dir)
    registry = get_registry()
    # The tensor loop twice: as train() runs it (precision and memory format "auto": bf16
    # autocast where the CPU has native bf16, channels_last for conv nets) and in fp32 NCHW
    # like the DataLoader loop, which separates the input pipeline's share from the rest.
    results: dict[str, list[tuple[float, float, int]]] = {
        "tensor loop": [],
        "tensor, fp32": [],
        "DataLoader+PIL": [],
    }
    pil = PILImages(data)
    for _ in range(args.rounds):
        for name in results:
            torch.manual_seed(0)
            model = registry.get("backbone", args.backbone).build(  # type: ignore[attr-defined]
                num_classes=data.num_classes, image_size=data.image_size, in_chans=data.in_chans
            )
            model.train()
            loop_defaults = name == "tensor loop"
            if loop_defaults and use_channels_last(model, "auto"):
                model.to(memory_format=torch.channels_last)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            if name.startswith("tensor"):
                loader = TensorLoader.from_bundle(
                    data,
                    "train",
                    batch_size=args.batch_size,
                    shuffle=True,
                    augment=True,
                    drop_last=True,
                )
                batches = cycle(loader)
            else:
                dl = DataLoader(
                    pil,
                    batch_size=args.batch_size,
                    shuffle=True,
                    drop_last=True,
                    num_workers=args.workers,
                    persistent_workers=args.workers > 0,
                )
                batches = cycle(dl)
            amp_here = autocast_dtype("auto", "cpu") if loop_defaults else None
            as_train = loop_defaults and fp32_depthwise("auto", "cpu", model)
            with depthwise_fp32(model) if as_train else contextlib.nullcontext():
                results[name].append(run(batches, model, opt, args.steps, args.warmup, amp_here))

    print(
        f"backbone {args.backbone}, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds, torch threads {torch.get_num_threads()}, "
        f"tensor loop: autocast {autocast_dtype('auto', 'cpu')}"
        f"{' (depthwise convs in fp32)' if fp32_depthwise('auto', 'cpu', model) else ''}, "
        "channels_last for conv nets"
    )
    rates = {}
    for name, runs in results.items():
        wall = sum(r[0] for r in runs)
        compute = sum(r[1] for r in runs)
        images = sum(r[2] for r in runs)
        rates[name] = images / wall
        print(
            f"{name:>15}: {rates[name]:8.1f} images/s   outside fwd/bwd/step: {100 * (1 - compute / wall):5.1f}% of step time"
        )
    base = rates["DataLoader+PIL"]
    print(
        f"speed-up of the tensor loop: {rates['tensor loop'] / base:.2f}x  (target >= 1.5x); "
        f"of its input pipeline alone (fp32 NCHW both): {rates['tensor, fp32'] / base:.2f}x"
    )


if __name__ == "__main__":
    main()
