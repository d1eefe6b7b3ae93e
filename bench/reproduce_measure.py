"""``bench/reproduce.py measure``: what each trained model of the reproduction loses, and its
lambda_max, under one protocol for every arm (``docs/reproduction.md``, "Protocol").

For each ``OUT/train/RUN.json`` whose weights are in ``OUT/models`` and that has no
``OUT/measure/RUN.json`` yet:

- base test accuracy, and lambda_max by Lanczos on ``--sharpness-samples`` training images
  (``pipeline.lambda_max_of``; converged or not is recorded);
- W4 weight-only PTQ, per-tensor (Distiller's default) and per-channel, before and after one
  fine-tune epoch (``pipeline.compress_copy`` with ``[finetune]``'s default: Adam for every arm,
  0.1x the training lr, cosine with warm-up);
- one-shot global magnitude pruning at 0-90% sparsity, no fine-tuning (Fig. 5, right);
- iterative magnitude pruning: prune to each sparsity of ``IMP_STEPS`` in turn with one
  fine-tune epoch after each step, accuracy after each (Fig. 5, left; the ``imp`` compressor's
  loop with a linear schedule, read step by step).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fcntl
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from reproduce import spec_for, stamp

from snt_search.checkpoint import load_checkpoint
from snt_search.compression import make_permanent, prunable_weights, prune_to, sweep
from snt_search.config import FIG5_SPARSITIES, FinetuneConfig, SharpnessConfig
from snt_search.data import TensorLoader
from snt_search.pipeline import build_model, compress_copy, lambda_max_of, load_data
from snt_search.registry import get_registry
from snt_search.trial_spec import TrialSpec

IMP_STEPS = (0.3, 0.5, 0.7, 0.8, 0.9)


def measure_all(args: argparse.Namespace) -> None:
    config = json.loads((args.out / "config.json").read_text())
    config["data_dir"] = str(args.data_dir)
    (args.out / "measure").mkdir(exist_ok=True)
    for path in sorted((args.out / "train").glob("*.json")):
        out = args.out / "measure" / path.name
        weights = args.out / "models" / f"{path.stem}.safetensors"
        if out.exists():
            continue
        if not weights.exists():
            print(f"{path.stem}: no trained weights at {weights}; run the train stage here")
            continue
        with _claim(out.with_suffix(".lock")) as mine:
            if mine and not out.exists():
                _measure_one(args, config, path, weights, out)


@contextlib.contextmanager
def _claim(lock: Path) -> Iterator[bool]:
    """Whether this process holds ``lock``: two ``measure`` processes split the runs between
    them, and a killed one's run is free again (the lock dies with its holder)."""
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            lock.unlink(missing_ok=True)


def _measure_one(
    args: argparse.Namespace, config: dict[str, Any], path: Path, weights: Path, out: Path
) -> None:
    record = json.loads(path.read_text())
    start = time.perf_counter()
    spec = replace(
        spec_for(config, record["arm"], record["seed"]),
        sharpness=SharpnessConfig(
            samples=args.sharpness_samples, batch_size=128, max_iter=100, tol=1e-3
        ),
        finetune=FinetuneConfig(),
    )
    result = measure(spec, weights)
    result |= {"arm": record["arm"], "seed": record["seed"], **stamp()}
    result["wall_s"] = time.perf_counter() - start
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{path.stem}: {json.dumps(_headline(result))}", flush=True)


def measure(spec: TrialSpec, weights: Path) -> dict[str, Any]:
    """Every measurement of one trained model (see the module docstring)."""
    registry = get_registry()
    data = load_data(spec, registry)
    model, _ = build_model(spec, data, registry)
    load_checkpoint(weights, model)
    loader = TensorLoader.from_bundle(data, "test", batch_size=512)

    def accuracy(m: Any) -> float:
        from snt_search.training import evaluate

        return evaluate(m, loader)

    base = accuracy(model)
    start = time.perf_counter()
    sharp = lambda_max_of(spec, model, data)
    out: dict[str, Any] = {
        "base_accuracy": base,
        "lambda_max": sharp.lambda_max,
        "lambda_converged": sharp.converged,
        "lambda_iterations": sharp.iterations,
        "sharpness_samples": spec.sharpness.samples,
        "sharpness_s": time.perf_counter() - start,
        "ptq": {},
    }
    for granularity in ("tensor", "channel"):
        for epochs in (0, 1):
            params = {
                "weight_bits": 4,
                "activation_bits": 0,
                "finetune_epochs": epochs,
                "weight_granularity": granularity,
            }
            quant = replace(spec, params={**spec.params, "compressor": params})
            compressed, _, _ = compress_copy(quant, model, data, registry=registry)
            out["ptq"][f"w4_per_{granularity}_ft{epochs}"] = accuracy(compressed)
    _, _, context = compress_copy(
        replace(spec, params={**spec.params, "compressor": {"finetune_epochs": 0}}),
        model,
        data,
        registry=registry,
    )
    curve = sweep(
        model, registry.get("compressor", "magnitude_prune"), context, accuracy, FIG5_SPARSITIES
    )
    out["one_shot"] = {"sparsities": list(curve.sparsities), "accuracies": list(curve.accuracies)}
    pruned = copy.deepcopy(model)
    targets = prunable_weights(pruned)
    finetune = context.finetune
    assert finetune is not None
    imp = []
    for target in IMP_STEPS:
        prune_to(targets, target, scope="global")
        finetune(pruned, 1)
        imp.append(accuracy(pruned))
    make_permanent(targets)
    out["imp"] = {"sparsities": list(IMP_STEPS), "accuracies": imp}
    return out


def _headline(result: dict[str, Any]) -> dict[str, float]:
    return {
        "base": round(result["base_accuracy"], 2),
        "lambda_max": round(result["lambda_max"], 2),
        "w4_tensor_ft1": round(result["ptq"]["w4_per_tensor_ft1"], 2),
        "one_shot_50": round(result["one_shot"]["accuracies"][5], 2),
        "imp_50": round(result["imp"]["accuracies"][1], 2),
    }
