"""Cost of one Eq. 1 layer against the ReLU it replaces, per call, side by side in one run.

For each activation shape of ResNet-20 and MobileNet-V1 as ``train()`` runs them (bf16 or
float32, channels_last, batch 64), and for a tiny tensor that shows the fixed cost per call:

- forward + backward of an in-place ``LBiasPReLU`` through the C++ operator, through the
  Python ``autograd.Function`` (the fallback) and of an in-place ``nn.ReLU``, each minus the
  cost of the surrounding clone/multiply/backward (the "base");
- the backward loops alone: ``eq1_kernels.backward_from_output`` against ATen's
  ``threshold_backward`` (ReLU's backward), summed over the model's activations.

    python bench/eq1_layer.py
    python bench/eq1_layer.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from snt_search.allocator import reuse_freed_memory
from snt_search.layers import LBiasPReLU, eq1_kernels, eq1_op

BF16, F32 = torch.bfloat16, torch.float32
# (shape, dtype, how many such activations the model has)
RESNET20 = [((64, 16, 32, 32), BF16, 7), ((64, 32, 16, 16), BF16, 6), ((64, 64, 8, 8), BF16, 6)]
MOBILENET = [
    ((64, 32, 32, 32), BF16, 1), ((64, 32, 32, 32), F32, 1), ((64, 64, 32, 32), BF16, 1),
    ((64, 64, 16, 16), F32, 1), ((64, 128, 16, 16), BF16, 2), ((64, 128, 16, 16), F32, 1),
    ((64, 128, 8, 8), F32, 1), ((64, 256, 8, 8), BF16, 2), ((64, 256, 8, 8), F32, 1),
    ((64, 256, 4, 4), F32, 1), ((64, 512, 4, 4), BF16, 6), ((64, 512, 4, 4), F32, 5),
    ((64, 512, 2, 2), F32, 1), ((64, 1024, 2, 2), BF16, 2), ((64, 1024, 2, 2), F32, 1),
]  # fmt: skip


def median_us(fn: Callable[[], object], calls: int, repeats: int = 7) -> float:
    for _ in range(max(3, calls // 10)):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def layer_costs(shape: tuple[int, ...], dtype: torch.dtype, calls: int) -> dict[str, float]:
    """µs per forward + backward above the base, for ReLU, the operator, the Python Function."""
    x0 = torch.randn(shape).to(dtype).contiguous(memory_format=torch.channels_last)
    g = torch.randn(shape).to(dtype).contiguous(memory_format=torch.channels_last)
    eq1, relu = LBiasPReLU(shape[1], inplace=True), nn.ReLU(inplace=True)

    def step(layer: nn.Module | None) -> None:
        for p in eq1.parameters():
            p.grad = None
        x = x0.clone().requires_grad_()
        h = x * 1.0  # not the leaf: the layers work in place
        (layer(h) if layer is not None else h).backward(g)

    base = median_us(lambda: step(None), calls)
    costs = {"relu": median_us(lambda: step(relu), calls) - base}
    costs["operator"] = median_us(lambda: step(eq1), calls) - base
    operator = eq1_op.ops
    eq1_op.ops = lambda: None  # type: ignore[assignment]  # the Python Function fallback
    try:
        costs["python"] = median_us(lambda: step(eq1), calls) - base
    finally:
        eq1_op.ops = operator  # type: ignore[method-assign]
    return costs


def backward_loops(shape: tuple[int, ...], dtype: torch.dtype) -> tuple[float, float]:
    """µs of Eq. 1's backward loop (from the output, as in place) and of threshold_backward."""
    c = shape[1]
    out = torch.randn(shape).to(dtype).contiguous(memory_format=torch.channels_last)
    g = torch.randn(shape).to(dtype).contiguous(memory_format=torch.channels_last)
    beta, zeta = torch.full((c,), 0.25), torch.randn(c) * 0.1
    eq1 = median_us(lambda: eq1_kernels.backward_from_output(g, out, beta, zeta, False), 50)
    relu = median_us(lambda: torch.ops.aten.threshold_backward(g, out, 0), 50)
    return eq1, relu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    args = ap.parse_args()
    malloc = reuse_freed_memory()  # as train() runs
    if args.threads:
        torch.set_num_threads(args.threads)
    if eq1_op.ops() is None:
        raise SystemExit("the C++ Eq. 1 operator could not be built here: nothing to compare")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads; {malloc}")
    print("# forward + backward per call, µs above the base; columns: shape, ReLU, Eq. 1 via "
          "the operator, Eq. 1 via the Python Function")  # fmt: skip
    tiny = layer_costs((2, 16, 2, 2), BF16, 2000)
    print(f"tiny 2x16x2x2 bf16   {tiny['relu']:8.1f} {tiny['operator']:8.1f} {tiny['python']:8.1f}")
    for name, shapes in (("resnet20", RESNET20), ("mobilenet_v1", MOBILENET)):
        total = dict.fromkeys(("relu", "operator", "python"), 0.0)
        loops = [0.0, 0.0]
        for shape, dtype, count in shapes:
            costs = layer_costs(shape, dtype, 40)
            for key in total:
                total[key] += count * costs[key]
            eq1, relu = backward_loops(shape, dtype)
            loops[0] += count * eq1
            loops[1] += count * relu
        n = sum(count for _, _, count in shapes)
        print(
            f"{name:<14} {n} activations per step, ms: ReLU {total['relu'] / 1e3:.2f}, operator "
            f"{total['operator'] / 1e3:.2f}, Python Function {total['python'] / 1e3:.2f}; "
            f"backward loops alone: Eq. 1 {loops[0] / 1e3:.2f}, threshold_backward "
            f"{loops[1] / 1e3:.2f}"
        )


if __name__ == "__main__":
    main()
