"""``bench/reproduce.py summary``: the reproduction's runs as tables with 95% intervals.

Reads ``OUT/train/*.json`` and ``OUT/measure/*.json`` (every run on disk, whichever process
and session made it) and writes ``OUT/summary.md``:

- per arm, mean and 95% t-interval over seeds of lambda_max, base accuracy, final train
  accuracy and each drop (W4 PTQ per-tensor/per-channel before and after one fine-tune
  epoch, one-shot and IMP pruning at 50% and 80%);
- each arm minus ADAM, with Welch's 95% interval (is the difference larger than the seeds'
  spread?);
- the one-shot and IMP curves, mean per sparsity;
- Spearman's rho between lambda_max and each drop over all runs, with its Fisher-z 95%
  interval (``snt_search.report.stats.spearman``): the paper's "flatter loses less".
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scipy import stats as sps

from snt_search.report.stats import spearman

ARM_ORDER = ("ADAM", "SAM", "+Preact", "ARCH")
Run = dict[str, Any]


def _drop(run: Run, value: float) -> float:
    return float(run["base_accuracy"]) - value


def _at(curve: dict[str, list[float]], sparsity: float) -> float:
    i = min(range(len(curve["sparsities"])), key=lambda j: abs(curve["sparsities"][j] - sparsity))
    return float(curve["accuracies"][i])


# column -> how to read it from a run (train and measure records merged)
COLUMNS: dict[str, Callable[[Run], float]] = {
    "λ_max": lambda r: float(r["lambda_max"]),
    "base acc. %": lambda r: float(r["base_accuracy"]),
    "train acc. %": lambda r: float(r["curve"][-1]["train_accuracy"]),
    "W4/tensor drop": lambda r: _drop(r, r["ptq"]["w4_per_tensor_ft0"]),
    "W4/tensor +1 ep. drop": lambda r: _drop(r, r["ptq"]["w4_per_tensor_ft1"]),
    "W4/channel +1 ep. drop": lambda r: _drop(r, r["ptq"]["w4_per_channel_ft1"]),
    "one-shot 50% drop": lambda r: _drop(r, _at(r["one_shot"], 0.5)),
    "one-shot 80% drop": lambda r: _drop(r, _at(r["one_shot"], 0.8)),
    "IMP 50% drop": lambda r: _drop(r, _at(r["imp"], 0.5)),
    "IMP 80% drop": lambda r: _drop(r, _at(r["imp"], 0.8)),
}


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (NaN with one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    half = sps.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, float(half)


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """mean(a) - mean(b) with Welch's 95% interval (NaN without two values each)."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan, math.nan
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
    return diff, diff - half, diff + half


def _fmt(mean: float, half: float) -> str:
    return f"{mean:.2f}" if math.isnan(half) else f"{mean:.2f} ± {half:.2f}"


def load_runs(out: Path) -> list[Run]:
    runs = []
    for path in sorted((out / "measure").glob("*.json")):
        trained = out / "train" / path.name
        runs.append({**json.loads(trained.read_text()), **json.loads(path.read_text())})
    return runs


def summary(out: Path) -> str:
    runs = load_runs(out)
    if not runs:
        raise SystemExit(f"{out}/measure holds no run; run the train and measure stages first")
    config = json.loads((out / "config.json").read_text())
    arms = [a for a in ARM_ORDER if any(r["arm"] == a for r in runs)]
    by_arm = {a: [r for r in runs if r["arm"] == a] for a in arms}
    t = config["train"]
    lines = [
        f"{config['backbone']}, {t['epochs']} epochs, batch {t['batch_size']}, lr {t['lr']:g} "
        f"({t['schedule']}, {t['warmup_epochs']:g} warm-up epochs), weight decay "
        f"{t['weight_decay']:g} on {t['weight_decay_scope']}, augmentation "
        f"{'on' if t['augment'] else 'off'}, SAM rho {config['rho']:g}; "
        f"lambda_max on {runs[0]['sharpness_samples']} training images; drops in points; "
        f"mean ± 95% t-interval half-width over seeds.",
        "",
        "| arm | seeds | " + " | ".join(COLUMNS) + " |",
        "| --- | --- |" + " --- |" * len(COLUMNS),
    ]
    for arm in arms:
        cells = [_fmt(*mean_ci([read(r) for r in by_arm[arm]])) for read in COLUMNS.values()]
        seeds = ",".join(str(r["seed"]) for r in by_arm[arm])
        lines.append(f"| {arm} | {seeds} | " + " | ".join(cells) + " |")
    if "ADAM" in by_arm:
        lines += ["", "Difference from ADAM (mean, Welch 95% interval):", ""]
        lines += ["| arm | " + " | ".join(COLUMNS) + " |", "| --- |" + " --- |" * len(COLUMNS)]
        for arm in arms[1:] if arms[0] == "ADAM" else arms:
            cells = []
            for read in COLUMNS.values():
                d, lo, hi = welch([read(r) for r in by_arm[arm]], [read(r) for r in by_arm["ADAM"]])
                cells.append(f"{d:+.2f}" + ("" if math.isnan(lo) else f" [{lo:+.2f}, {hi:+.2f}]"))
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    for key, title in (("one_shot", "One-shot"), ("imp", "Iterative (IMP)")):
        sparsities = runs[0][key]["sparsities"]
        lines += ["", f"{title} magnitude pruning, test accuracy % by sparsity (mean):", ""]
        lines.append("| arm | " + " | ".join(f"{s:.1f}" for s in sparsities) + " |")
        lines.append("| --- |" + " --- |" * len(sparsities))
        for arm in arms:
            means = [
                statistics.fmean(r[key]["accuracies"][i] for r in by_arm[arm])
                for i in range(len(sparsities))
            ]
            lines.append(f"| {arm} | " + " | ".join(f"{v:.1f}" for v in means) + " |")
    lines += ["", f"Spearman's rho between lambda_max and each drop, all {len(runs)} runs:", ""]
    lam = [COLUMNS["λ_max"](r) for r in runs]
    for name, read in COLUMNS.items():
        if "drop" in name:
            lines.append(f"- {name}: {spearman(lam, [read(r) for r in runs]).describe()}")
    return "\n".join(lines) + "\n"


def write_summary(out: Path) -> None:
    text = summary(out)
    (out / "summary.md").write_text(text)
    print(text)
