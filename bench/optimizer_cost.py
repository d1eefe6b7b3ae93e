"""Step cost of the optimizers and of the SNT transform, measured side by side in one run.

Times one full training step (forward, backward, optimizer step; two passes for the SAM
family) of the same model on the same batch, interleaving the configurations over several
rounds and taking medians, and prints ratios:

- ``sam`` and ``asam`` vs ``adam`` (expected about 2x: a second forward/backward pass);
- ``snt`` + ``adam`` vs ``none`` + ``adam`` (the paper's promise: no overhead; target <= 1.05x).

    python bench/optimizer_cost.py [--backbone mixer_s] [--batch-size 128] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from snt_search.registry import get_registry
from snt_search.training import frozen_bn_stats

CONFIGS = [("none", "adam"), ("none", "sam"), ("none", "asam"), ("snt", "adam")]


def step_time(
    transform: str, optimizer: str, backbone: str, x: torch.Tensor, y: torch.Tensor, steps: int
) -> float:
    registry = get_registry()
    torch.manual_seed(0)
    model = registry.get("backbone", backbone).build(
        num_classes=10, image_size=x.shape[-1], in_chans=3
    )  # type: ignore[attr-defined]
    registry.get("transform", transform).apply(model)  # type: ignore[attr-defined]
    plugin = registry.get("optimizer", optimizer)
    opt = plugin.build(model.parameters(), lr=1e-3, weight_decay=0.0)  # type: ignore[attr-defined]
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if plugin.two_pass:  # type: ignore[attr-defined]

            def closure() -> torch.Tensor:
                with frozen_bn_stats(model):
                    loss = F.cross_entropy(model(x), y)
                    loss.backward()
                return loss

            opt.step(closure)
        else:
            opt.step()
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="mixer_s")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--steps", type=int, default=5, help="timed steps per configuration per round"
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = torch.randn(args.batch_size, 3, 32, 32), torch.randint(0, 10, (args.batch_size,))
    samples: dict[tuple[str, str], list[float]] = {c: [] for c in CONFIGS}
    for _ in range(args.rounds):
        for config in CONFIGS:
            samples[config].append(step_time(*config, args.backbone, x, y, args.steps))
    med = {c: statistics.median(v) for c, v in samples.items()}
    print(
        f"backbone {args.backbone}, batch {args.batch_size}, median of {args.rounds} rounds x {args.steps} steps, torch threads {torch.get_num_threads()}"
    )
    for (tf, opt), t in med.items():
        print(f"  {tf:>4} + {opt:<5} {1000 * t:8.1f} ms/step")
    base = med[("none", "adam")]
    print(f"sam  / adam: {med[('none', 'sam')] / base:.2f}x   (expected about 2x)")
    print(f"asam / adam: {med[('none', 'asam')] / base:.2f}x   (expected about 2x)")
    print(f"snt+adam / none+adam: {med[('snt', 'adam')] / base:.3f}x   (target <= 1.05x)")


if __name__ == "__main__":
    main()
