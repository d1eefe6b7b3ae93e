#!/usr/bin/env bash
# GPU check (issue 22, item 2): one prepared run of everything that needs a CUDA device, sized to
# finish inside the device tool's 10-minute limit on one GPU (docs/benchmarks.md, "GPU check").
#
#   setup  environment report; installs what the GPU machine lacks (see --prepare) and this
#          checkout itself (pip install -e ., offline) when `snt-search` is not installed
#   a      the CUDA-only tests: pytest -m gpu on the test files that hold such tests
#   b      one resnet20_ptq study on the GPU, 2 trials: budget `short` (batch 128, all of the
#          subset's ~5.2k training images, lambda_max on 1024 of them) with
#          `--set train.epochs=40` (--epochs): `short` alone is 10 epochs, and models trained
#          that briefly are far from converged (docs/reproduction.md: 8 epochs, 55% accuracy).
#          40 epochs of the cosine schedule is a guess at a plateau on 5k images, sized to fit
#          the time: the summary prints the test accuracy over the last 5 epochs of each trial
#          to show whether it was reached. Then `snt-search pareto --json`
#   c1     bench/transform_overhead.py --device cuda (all five backbones)
#   c2     bench/sharpness.py --device cuda (mixer_s and resnet20, --reference --matched)
#   d      a Ray study (--driver ray --device cuda) whose space asks [resources] gpus = 0.5, so
#          two trials share the one GPU, inside a loopback-only network namespace; checks from
#          Ray's per-trial result.json that the two trials ran at the same time in two processes
#
# Everything it keeps goes to --out (at most 8 files, what the device tool brings back):
#   gpu_check.log, summary.md, gpu.db (both studies), a_pytest.json, b_study.json,
#   c_transform_overhead.json, c_sharpness.json, d_ray.json
# Scratch (Ray's folders, the studies' pareto files, the wheels' install) goes to a temp folder.
# Each step runs under `timeout`, capped so that the steps after it keep their time; a failed
# step does not stop the others; the exit status is 1 if any step failed, 0 otherwise.
#
# --rehearse (or DEVICE=cpu) runs every step on the CPU with tiny sizes (smoke budget with 2
# epochs, a small ImageFolder cut from the data, 1 repeat), to check the plumbing without a
# GPU: arguments, files under --out, the summary, exit codes, the Ray sandbox. Its figures
# mean nothing.
#
# --prepare (run on the developer's machine, online, before lending a GPU) copies the data set
# into .gpu-data/ and writes .whl/site-cp312.tar.xz: the packages the GPU machine's image lacks
# (optuna, ray[tune], pyhessian and their missing dependencies, at the versions of
# .ci/constraints.txt, built for its Python 3.12; Ray without its 31 MB Java jar, so that the
# working tree stays under the tool's 64 MiB). Carry both: see docs/benchmarks.md.

set -uo pipefail

usage() {
    cat <<'EOF'
usage: bash bench/gpu_check.sh [--out DIR] [--data-dir DIR] [--steps LIST] [--epochs N]
                               [--budget-s S] [--wheels DIR] [--rehearse] [--prepare] [-h]

The GPU check: everything that needs a CUDA device, in one run of at most ~9.5 minutes.
Steps:
  setup  environment report; offline install of .whl/site-cp312.tar.xz and `pip install -e .`
         where snt-search is missing
  a      CUDA-only tests (pytest -m gpu)
  b      resnet20_ptq study with --device cuda, budget short, 40 epochs, 2 trials, on the
         CIFAR-10 subset; then snt-search pareto --json
  c1     bench/transform_overhead.py --device cuda (snt vs none, training-step time)
  c2     bench/sharpness.py --device cuda (lambda_max: ours vs PyHessian)
  d      Ray study, [resources] gpus = 0.5 per trial, --driver ray --device cuda, in a
         loopback-only sandbox; checks that two trials ran at once on the one GPU

options:
  --out DIR        where the log, the summary and one JSON per step go (default runs/gpu-check;
                   env OUT)
  --data-dir DIR   the CIFAR-10 subset, ImageFolder layout train/<class>/*.png, test/<class>/
                   (default ../shared/datasets/cifar10-subset; env DATA_DIR)
  --steps LIST     comma-separated subset of a,b,c1,c2,d (c = c1,c2; default: all)
  --epochs N       training epochs of step b (default 40)
  --budget-s S     the whole run's time, steps' timeouts included (default 560; rehearsal 1500)
  --wheels DIR     where the --prepare'd packages are (default .whl)
  --rehearse       every step on the CPU with tiny sizes (also DEVICE=cpu): checks the plumbing
  --prepare        (here, online) copy the data into .gpu-data/ and build .whl/site-cp312.tar.xz
  -h, --help       this help

Exit status: 0 when every step passed, 1 when one failed or timed out, 2 on bad arguments.
EOF
}

PY=${PYTHON:-python3}
OUT=${OUT:-}
DATA=${DATA_DIR:-}
STEPS="a,b,c1,c2,d"
EPOCHS=40
BUDGET_S=""
WHEELS=""
MODE=gpu
[[ ${DEVICE:-cuda} == cpu ]] && MODE=rehearse
PREPARE=0

while (($#)); do
    case $1 in
        --out) OUT=${2:?--out needs a folder}; shift 2 ;;
        --data-dir) DATA=${2:?--data-dir needs a folder}; shift 2 ;;
        --steps) STEPS=${2:?--steps needs a list}; shift 2 ;;
        --epochs) EPOCHS=${2:?--epochs needs a number}; shift 2 ;;
        --budget-s) BUDGET_S=${2:?--budget-s needs seconds}; shift 2 ;;
        --wheels) WHEELS=${2:?--wheels needs a folder}; shift 2 ;;
        --rehearse) MODE=rehearse; shift ;;
        --prepare) PREPARE=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
STEPS=${STEPS//c1/C1}
STEPS=${STEPS//c2/C2}
STEPS=${STEPS//c/C1,C2}
STEPS=${STEPS//C/c}
for s in ${STEPS//,/ }; do
    [[ $s =~ ^(a|b|c1|c2|d)$ ]] || { echo "gpu_check.sh: unknown step '$s' in --steps (a,b,c1,c2,d)" >&2; exit 2; }
done
[[ $EPOCHS =~ ^[0-9]+$ ]] || { echo "gpu_check.sh: --epochs takes a whole number, got '$EPOCHS'" >&2; exit 2; }
# Paths given are taken from where the script was called; the defaults from the repository root.
for v in OUT DATA WHEELS; do [[ -n ${!v} ]] && printf -v "$v" '%s' "$(realpath -m -- "${!v}")"; done
cd "$(dirname "$0")/.." || exit 2 # the repository root
OUT=${OUT:-runs/gpu-check}
DATA=${DATA:-../shared/datasets/cifar10-subset}
WHEELS=${WHEELS:-.whl}

# --prepare: run here, online; writes only ignored paths (.gpu-data/, .whl/).
if ((PREPARE)); then
    set -e
    [[ -d $DATA/train && -d $DATA/test ]] || { echo "no ImageFolder at $DATA (train/, test/)" >&2; exit 2; }
    grep -qx '/.gpu-data/' .git/info/exclude 2>/dev/null || echo '/.gpu-data/' >>.git/info/exclude
    git check-ignore -q .whl/x || { echo "/.whl/ is not ignored by git: add it to .gitignore" >&2; exit 2; }
    rm -rf .gpu-data/cifar10-subset && mkdir -p .gpu-data && cp -r "$DATA" .gpu-data/cifar10-subset
    stage=$(mktemp -d)
    # What the GPU machine's image lacks (its package list in the device tool's notes), at the
    # versions the test suite passed with.
    names="optuna alembic SQLAlchemy Mako colorlog ray tensorboardX jsonschema
        jsonschema-specifications referencing rpds-py pydantic pydantic_core annotated-types
        typing-inspection PyHessian"
    pins=()
    for n in $names; do
        pin=$(grep -i "^$n==" .ci/constraints.txt) || { echo "$n is not in .ci/constraints.txt" >&2; exit 2; }
        pins+=("$pin")
    done
    binary=() source=()
    for pin in "${pins[@]}"; do
        # PyHessian has no wheel on the index: build its (pure Python) one here.
        [[ ${pin,,} == pyhessian==* ]] && source+=("$pin") || binary+=("$pin")
    done
    "$PY" -m pip wheel -q --no-deps -w "$stage/wheels" "${source[@]}"
    target=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
    "$PY" -m pip download -q --no-deps "${target[@]}" -d "$stage/wheels" "${binary[@]}"
    "$PY" -m pip install -q --no-deps --no-index --no-compile "${target[@]}" --target "$stage/site" \
        "$stage"/wheels/*.whl
    rm -rf "$stage/site/ray/jars" "$stage/site/bin" # Java workers and console scripts: not used
    mkdir -p .whl && rm -f .whl/site-cp312.tar.xz
    XZ_OPT=-6T0 tar -cJf .whl/site-cp312.tar.xz -C "$stage/site" .
    rm -rf "$stage"
    du -sh .gpu-data .whl/site-cp312.tar.xz
    echo "tree that travels: $(($(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1) / 1048576)) MiB + carried above (limit 64 MiB)"
    exit 0
fi

if [[ $MODE == rehearse ]]; then
    DEV=cpu
    BUDGET_S=${BUDGET_S:-1500}
else
    DEV=cuda
    BUDGET_S=${BUDGET_S:-560}
fi
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
DATA=$(cd "$DATA" 2>/dev/null && pwd) || { echo "gpu_check.sh: no data folder '$DATA' (--data-dir)" >&2; exit 2; }
rm -f "$OUT"/gpu_check.log "$OUT"/summary.md "$OUT"/gpu.db "$OUT"/[abcd]_*.json
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
LOG=$OUT/gpu_check.log
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 RAY_USAGE_STATS_ENABLED=0 COLUMNS=160
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
START=$(date +%s)
DEADLINE=$((START + BUDGET_S))
declare -A STATUS SECS NOTE
ORDER=()

echo "== gpu_check.sh: mode $MODE (device $DEV), steps $STEPS, out $OUT, data $DATA, budget ${BUDGET_S}s, scratch $WORK"

# The least time each step needs, reserved for it while the steps before it run.
declare -A MIN_S=([a]=30 [b]=60 [c1]=30 [c2]=30 [d]=60)
wanted() { [[ ,$STEPS, == *,$1,* ]]; }

# step_timeout CAP STEP: CAP, or less so that every later wanted step keeps its MIN_S.
step_timeout() {
    local cap=$1 step=$2 reserve=0 later=0 s
    [[ $step == setup ]] && later=1
    for s in a b c1 c2 d; do
        ((later)) && wanted "$s" && reserve=$((reserve + MIN_S[$s]))
        [[ $s == "$step" ]] && later=1
    done
    local left=$((DEADLINE - $(date +%s) - reserve))
    ((left < cap)) && cap=$left
    echo "$cap"
}

# run_step NAME CAP COMMAND...: time the command under timeout, record PASS/FAIL/TIMEOUT. A
# COMMAND that is a function of this script runs in `bash -c` (it and the variables it reads
# are exported), so that timeout can end it with everything it started (its process group).
run_step() {
    local name=$1 cap=$2
    shift 2
    local t
    t=$(step_timeout "$cap" "$name")
    ORDER+=("$name")
    if ((t < 10)); then
        STATUS[$name]=SKIPPED SECS[$name]=0 NOTE[$name]="no time left in --budget-s"
        echo "== step $name: SKIPPED (no time left)"
        return
    fi
    echo "== step $name (timeout ${t}s): $*"
    local t0 rc
    t0=$(date +%s%N)
    if declare -F "$1" >/dev/null; then
        timeout --kill-after=15 "$t" bash -c '"$@"' bash "$@"
    else
        timeout --kill-after=15 "$t" "$@"
    fi
    rc=$?
    local ms=$((($(date +%s%N) - t0) / 1000000))
    SECS[$name]=$((ms / 1000)).$((ms % 1000 / 100))
    case $rc in
        0) STATUS[$name]=PASS ;;
        124 | 137) STATUS[$name]=TIMEOUT NOTE[$name]="killed after ${t}s" ;;
        *) STATUS[$name]=FAIL NOTE[$name]="exit $rc" ;;
    esac
    echo "== step $name: ${STATUS[$name]} in ${SECS[$name]}s"
}

# ---------------------------------------------------------------------------------------- setup
setup() {
    local site
    site=$(ls "$WHEELS"/site-cp312.tar.xz 2>/dev/null)
    if [[ -n $site ]] && "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
        mkdir -p "$WORK/site" && tar -xJf "$site" -C "$WORK/site" || return 1
        echo "installed $site into $WORK/site (PYTHONPATH)"
    elif [[ -n $site ]]; then
        echo "$site is for Python 3.12; $("$PY" -V) here: not used"
    fi
    if ! "$PY" -c 'import importlib.metadata as m; m.distribution("snt-search")' 2>/dev/null; then
        echo "snt-search is not installed: pip install -e . (offline, no dependencies)"
        if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .; then
            # An older setuptools cannot build it: the same packages and entry points by hand.
            echo "pip install -e . failed: $WORK/snt (on PYTHONPATH) points at this checkout instead"
            "$PY" - "$WORK/snt" <<'EOF' || return 1
import sys, tomllib
from pathlib import Path

root, site = Path.cwd(), Path(sys.argv[1])
cfg = tomllib.loads((root / "pyproject.toml").read_text())
project = cfg["project"]
info = site / f"snt_search-{project['version']}.dist-info"
info.mkdir(parents=True, exist_ok=True)
(info / "METADATA").write_text(
    f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
)
groups = {**project.get("entry-points", {}), "console_scripts": project.get("scripts", {})}
(info / "entry_points.txt").write_text(
    "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n" for g, eps in groups.items())
)
for name, folder in {"snt_search": "snt_search", **cfg["tool"]["setuptools"]["package-dir"]}.items():
    if not (site / name).exists():
        (site / name).symlink_to(root / folder)
EOF
        fi
    fi
    "$PY" - "$DEV" <<'EOF'
import importlib, os, platform, sys
from pathlib import Path

import torch

device = sys.argv[1]
print(f"python {platform.python_version()} ({sys.executable}), {os.cpu_count()} cpus")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuda available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, bf16: {torch.cuda.is_bf16_supported()}")
bad = []
for name in ("snt_search", "optuna", "ray", "ray.tune", "timm", "torchvision", "sklearn", "pyhessian"):
    try:
        mod = importlib.import_module(name)
        print(f"  {name} {getattr(mod, '__version__', '')} {Path(mod.__file__).parent}")
    except Exception as exc:
        bad.append(name)
        print(f"  {name}: NOT importable ({type(exc).__name__}: {exc})")
import snt_search
if Path.cwd() not in Path(snt_search.__file__).resolve().parents:
    print(f"warning: snt_search comes from {snt_search.__file__}, not this checkout")
if device == "cuda" and not torch.cuda.is_available():
    bad.append("a CUDA device")
sys.exit(f"missing: {', '.join(bad)}" if bad else 0)
EOF
}
# $WORK/site: the --prepare'd packages (Python 3.12 only); $WORK/snt: setup's fallback install.
PYTHONPATH=$WORK/snt${PYTHONPATH:+:$PYTHONPATH}
if [[ -f $WHEELS/site-cp312.tar.xz ]] && "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    PYTHONPATH=$WORK/site:$PYTHONPATH
fi
export PYTHONPATH
export PY OUT DATA WORK DEV MODE EPOCHS WHEELS
export -f setup
run_step setup 90 setup
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv

# A small ImageFolder cut from the data for the rehearsal (20 training, 5 test images a class).
if [[ $MODE == rehearse ]]; then
    for split in train:20 test:5; do
        for cls in "$DATA/${split%%:*}"/*/; do
            mkdir -p "$WORK/tiny/${split%%:*}/$(basename "$cls")"
            find "$cls" -maxdepth 1 -name '*.png' | sort | head -n "${split##*:}" |
                xargs -r cp -t "$WORK/tiny/${split%%:*}/$(basename "$cls")"
        done
    done
    STUDY_DATA=$WORK/tiny
else
    STUDY_DATA=$DATA
fi
export STUDY_DATA

# ------------------------------------------------------------------------------ a: CUDA tests
step_a() {
    local files
    files=$(grep -rl --include='*.py' 'pytest.mark.gpu' tests | sort)
    "$PY" -m pytest -q -m gpu -rs -p no:cacheprovider $files 2>&1 | tee "$WORK/pytest.txt"
    local rc=${PIPESTATUS[0]}
    "$PY" - "$WORK/pytest.txt" "$OUT/a_pytest.json" "$rc" "$DEV" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", text.splitlines()[-1] if text else "")}
out = {"rc": int(sys.argv[3]), "counts": counts, "tail": text[-3000:]}
json.dump(out, open(sys.argv[2], "w"), indent=2)
# On the GPU a skipped CUDA test means CUDA was not seen: that is a failure, not a pass.
if sys.argv[4] == "cuda" and (counts.get("skipped") or not counts.get("passed")):
    sys.exit("CUDA tests skipped or none ran")
sys.exit(int(sys.argv[3]))
EOF
}
export -f step_a
wanted a && run_step a 90 step_a

# ---------------------------------------------------------------------- b: resnet20_ptq on GPU
# dump_study NAME OUTFILE [KEY=VALUE...]: the study's trials (values, params, attributes; of the
# per-epoch curve the last epoch) and its pareto --json, with the KEY=VALUE pairs, in one JSON.
dump_study() {
    "$PY" -m snt_search pareto --storage "sqlite:///$OUT/gpu.db" --study-name "$1" --json >"$WORK/$1.pareto.json"
    "$PY" - "$OUT/gpu.db" "$1" "$WORK/$1.pareto.json" "$2" "${@:3}" <<'EOF'
import json, sys
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
db, name, pareto, out = sys.argv[1:5]
extra = dict(kv.split("=", 1) for kv in sys.argv[5:])
extra = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in extra.items()}
study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
trials = []
for t in study.trials:
    attrs = dict(t.user_attrs)
    curve = attrs.get("curve") or []
    attrs["curve"] = curve[-5:]  # the last epochs (convergence): the full curve is in gpu.db
    trials.append({
        "number": t.number, "state": t.state.name, "values": t.values, "params": t.params,
        "start": t.datetime_start.isoformat() if t.datetime_start else None,
        "complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
        "epochs": len(curve), "user_attrs": attrs,
    })
try:
    front = json.load(open(pareto))
except Exception as exc:
    front = {"error": f"pareto --json gave no JSON: {exc}"}
json.dump({**extra, "trials": trials, "pareto": front}, open(out, "w"), indent=2, default=str)
done = [t for t in trials if t["state"] == "COMPLETE"]
for t in trials:
    a = t["user_attrs"]
    sr = a.get("sharpness_report") or {}
    plugins = (a.get("config") or {}).get("plugins", {})
    print(f"  trial {t['number']} {t['state']}: {plugins.get('transform', '?')} + "
          f"{plugins.get('optimizer', '?')}, values {t['values']}, "
          f"lambda converged {sr.get('converged')}, {t['epochs']} epochs, "
          f"{a.get('fail_reason', '')}")
sys.exit(0 if len(done) == len(trials) and done else "not every trial completed")
EOF
}

step_b() {
    local budget=short sets=(--set "train.epochs=$EPOCHS")
    [[ $MODE == rehearse ]] && budget=smoke sets=(--set train.epochs=2)
    local cmd=("$PY" -m snt_search study --space resnet20_ptq --budget "$budget" --trials 2
        --device "$DEV" --dataset imagefolder --data-dir "$STUDY_DATA"
        --storage "sqlite:///$OUT/gpu.db" --study-name resnet20_ptq_gpu --out "$WORK/study-b"
        "${sets[@]}")
    echo "${cmd[*]}"
    "${cmd[@]}"
    local rc=$?
    dump_study resnet20_ptq_gpu "$OUT/b_study.json" "command=${cmd[*]}" "rc=$rc" "budget=$budget" \
        "set=${sets[1]}" || return 1
    return $rc
}
export -f step_b dump_study
wanted b && run_step b 210 step_b

# ---------------------------------------------------------------------------- c: the benchmarks
if [[ $MODE == rehearse ]]; then
    C1=(--backbones resnet20 --repeats 1 --warmup 1)
    C2=(--samples 16 --batch-size 8 --train-steps 2 --models resnet20 --reference --matched)
else
    C1=(--repeats 21 --warmup 5)
    C2=(--samples 512 --batch-size 128 --train-steps 200 --repeats 2 --reference --matched --data-dir "$DATA")
fi
wanted c1 && run_step c1 60 "$PY" bench/transform_overhead.py --device "$DEV" "${C1[@]}" \
    --json "$OUT/c_transform_overhead.json"
wanted c2 && run_step c2 90 "$PY" bench/sharpness.py --device "$DEV" "${C2[@]}" \
    --json "$OUT/c_sharpness.json"

# ------------------------------------------------------------- d: Ray, two trials on one GPU
# A study space: resnet20_ptq with a [resources] table (half a GPU a trial; on the CPU
# rehearsal one CPU a trial and no GPU, since Ray refuses a GPU share where there is none).
step_d() {
    local space=$WORK/resnet20_ptq_ray.toml gpus=0.5 cpus=4 budget=short sets=(--set train.epochs=8)
    [[ $MODE == rehearse ]] && gpus=0 cpus=1 budget=smoke sets=(--set train.epochs=2)
    { cat studies/resnet20_ptq.toml; printf '\n[resources]\ncpus = %s\ngpus = %s\n' "$cpus" "$gpus"; } >"$space"
    local cmd=("$PY" -m snt_search study --space "$space" --budget "$budget" --trials 2
        --device "$DEV" --dataset imagefolder --data-dir "$STUDY_DATA"
        --storage "sqlite:///$OUT/gpu.db" --study-name resnet20_ptq_ray --out "$WORK/study-d"
        --driver ray --ray-max-concurrent 2 "${sets[@]}")
    echo "${cmd[*]}"
    mkdir -p "$WORK/home"
    local ray_tmp
    ray_tmp=$(mktemp -d /tmp/snt-ray-XXXX) # Ray's socket paths must stay short
    # nvidia-smi from outside the sandbox: how many processes hold the GPU at once.
    local smi_pid=""
    if command -v nvidia-smi >/dev/null; then
        while sleep 1; do
            echo "$(date +%s) $(nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | grep -c .)"
        done >"$WORK/smi.txt" &
        smi_pid=$!
    fi
    local sandbox="unshare --net --pid --fork --mount-proc --kill-child"
    # Ray's session files and auth token go to a scratch HOME; built CPU kernels stay shared.
    local cache=${SNT_SEARCH_CACHE_DIR:-$HOME/.cache/snt_search/kernels}
    local how rc
    if $sandbox sh -c 'ip link set lo up' 2>"$WORK/unshare.err"; then
        how="loopback-only network namespace"
        # sh stays PID 1 of the namespace and reaps orphans; its end ends every Ray process.
        HOME=$WORK/home RAY_TMPDIR=$ray_tmp SNT_SEARCH_CACHE_DIR=$cache \
            $sandbox sh -c 'ip link set lo up && "$@"' sh "${cmd[@]}"
        rc=$?
    else
        # The device machine reaches nothing outside itself; say so and run Ray there directly.
        how="no sandbox (unshare: $(head -c 200 "$WORK/unshare.err" | tr -d '\n')): Ray on the machine's own interfaces"
        HOME=$WORK/home RAY_TMPDIR=$ray_tmp SNT_SEARCH_CACHE_DIR=$cache "${cmd[@]}"
        rc=$?
    fi
    [[ -n $smi_pid ]] && kill "$smi_pid" 2>/dev/null
    rm -rf "$ray_tmp"
    echo "Ray ran in: $how"
    dump_study resnet20_ptq_ray "$WORK/d_study.json" "command=${cmd[*]}" "rc=$rc" "sandbox=$how"
    local dump_rc=$?
    # Two trials at once: each trial's Ray reports (result.json) span [first start, last report];
    # the spans must overlap, in two processes, with the GPU share the space asked for.
    "$PY" - "$WORK/study-d/ray" "$WORK/d_study.json" "$OUT/d_ray.json" "$WORK/smi.txt" "$gpus" <<'EOF'
import json, sys
from pathlib import Path
ray_dir, study, out, smi, gpus = sys.argv[1:]
spans = []
for f in sorted(Path(ray_dir).glob("*/*/result.json")):
    rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    if rows:
        start = min(r["timestamp"] - r.get("time_this_iter_s", 0) for r in rows)
        spans.append({"trial": rows[0].get("trial"), "pid": rows[0].get("pid"),
                      "start": start, "end": max(r["timestamp"] for r in rows), "reports": len(rows),
                      "ray_dir": f.parent.name})
overlap = 0.0
if len(spans) >= 2:
    overlap = min(s["end"] for s in spans) - max(s["start"] for s in spans)
pids = {s["pid"] for s in spans}
concurrent = len(spans) >= 2 and overlap > 0 and len(pids) == len(spans)
smi_max = None
if Path(smi).exists():
    counts = [int(line.split()[1]) for line in Path(smi).read_text().splitlines() if len(line.split()) == 2]
    smi_max = max(counts, default=0)
trials = (json.load(open(study)) if Path(study).exists() else {}).get("trials", [])
devices = sorted({str((t["user_attrs"].get("config") or {}).get("device")) for t in trials})
result = {"gpus_per_trial": float(gpus), "devices": devices, "spans": spans, "overlap_s": overlap,
          "distinct_pids": len(pids), "concurrent": concurrent,
          "nvidia_smi_max_processes": smi_max, "study": json.load(open(study)) if Path(study).exists() else None}
json.dump(result, open(out, "w"), indent=2, default=str)
print(f"Ray trials: {len(spans)} on {', '.join(devices)} in {len(pids)} processes, overlapping {overlap:.0f} s "
      f"({'concurrent' if concurrent else 'NOT concurrent'}); nvidia-smi saw at most {smi_max} GPU processes at once")
sys.exit(0 if concurrent else "the trials did not run at the same time")
EOF
    local check_rc=$?
    ((rc == 0 && dump_rc == 0 && check_rc == 0))
}
export -f step_d
wanted d && run_step d 150 step_d

# --------------------------------------------------------------------------------------- summary
{
    echo "# GPU check ($MODE, device $DEV)"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(($(date +%s) - START)) s in all; $("$PY" -c 'import torch; print("torch", torch.__version__, "GPU", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>&1 | tail -1)"
    echo
    echo "| step | status | seconds | note |"
    echo "| --- | --- | ---: | --- |"
    for s in "${ORDER[@]}"; do
        echo "| $s | ${STATUS[$s]} | ${SECS[$s]} | ${NOTE[$s]:-} |"
    done
    echo
    "$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    try:
        return json.loads((out / name).read_text())
    except Exception:
        return None
if (a := load("a_pytest.json")):
    print(f"- a: pytest -m gpu: {a['counts']}")
for key, name in (("b", "b_study.json"), ("d", "d_ray.json")):
    data = load(name)
    study = (data or {}).get("study", data) if key == "d" else data
    for t in (study or {}).get("trials", []):
        at = t["user_attrs"]
        cfg = (at.get("config") or {}).get("plugins", {})
        sr = at.get("sharpness_report") or {}
        tail = at.get("curve") or []
        # how settled training is: test accuracy over the last epochs, and the last loss
        settled = (f"; last {len(tail)} epochs: test acc {min(e['test_accuracy'] for e in tail):.1f}-"
                   f"{max(e['test_accuracy'] for e in tail):.1f}%, train acc {tail[-1]['train_accuracy']:.1f}%,"
                   f" loss {tail[-1]['loss']:.3f}") if tail else ""
        print(f"- {key}: trial {t['number']} {t['state']} {cfg.get('transform', '?')}+{cfg.get('optimizer', '?')}"
              f" ({t['epochs']} epochs): lambda_max {at.get('lambda_max')} (converged {sr.get('converged')}),"
              f" base accuracy {at.get('base_accuracy')}, drop {at.get('accuracy_drop')},"
              f" train {at.get('train_time_s')} s{settled} {at.get('fail_reason', '')}")
if (c1 := load("c_transform_overhead.json")):
    for r in c1["rows"]:
        print(f"- c1: {r['backbone']}: none {r['ms_none']:.2f} ms, {r['transform']} {r['ms_new']:.2f} ms, ratio {r['ratio']:.3f}x")
if (c2 := load("c_sharpness.json")):
    for r in c2:
        print(f"- c2: {r['model']} ({r.get('device')}): lambda ours {r['ours_lambda']:.4f} ({r['ours_hvps']} HVPs, {r['ours_s']:.2f} s), "
              f"PyHessian {r['pyhessian_lambda']:.4f} ({r['pyhessian_hvps']} HVPs, {r['pyhessian_s']:.2f} s), "
              f"speedup {r['pyhessian_s'] / r['ours_s']:.2f}x"
              + (f", to our error {r['matched_s'] / r['ours_s']:.2f}x" if "matched_s" in r else ""))
if (d := load("d_ray.json")):
    print(f"- d: {len(d['spans'])} Ray trials, {d['distinct_pids']} processes, overlap {d['overlap_s']:.0f} s, "
          f"concurrent: {d['concurrent']}, gpus per trial {d['gpus_per_trial']}, "
          f"nvidia-smi max processes {d['nvidia_smi_max_processes']}; {(d.get('study') or {}).get('sandbox', '')}")
EOF
} >"$OUT/summary.md" 2>&1
echo
cat "$OUT/summary.md"
echo
echo "files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
rc=0
for s in "${ORDER[@]}"; do [[ ${STATUS[$s]} == PASS ]] || rc=1; done
echo "== gpu_check.sh: $( ((rc)) && echo 'FAILED (see the table)' || echo 'all steps passed') in $(($(date +%s) - START)) s"
rm -rf "$WORK"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null
exit $rc
