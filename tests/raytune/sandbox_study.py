"""Run a study on Ray inside a test's sandbox (network namespace holding only ``lo``).

Not a test module: the tests run it with :func:`tests.raytune.conftest.sandboxed`.

``python sandbox_study.py SPACE --trials N`` runs the study on a Ray this process starts;
``--cluster`` first starts a 2-node cluster with ``ray start`` (the worker node in a PID
namespace of its own, so killing it kills every process of that node at once, like a machine
that dies) and joins it through its address; ``--kill-worker`` kills the worker node as soon
as a trial running there has reported an epoch. The last line printed is
``RESULT <json>``: the node ids and what was killed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

PORT = 6391
NODE = ["--num-cpus", "1", "--num-gpus", "0", "--object-store-memory", "100000000"]
# The `ray` command of this interpreter's environment, not whichever one PATH finds first (a
# pyenv shim or another virtualenv would start a cluster of another Ray version).
RAY = str(Path(sys.executable).parent / "ray")


def _stamp(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("space")
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--storage", default="sqlite:///study.db")
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--kill-worker", action="store_true")
    args = parser.parse_args()

    from snt_search.driver import StudyOptions
    from snt_search.ray import RayOptions, run_study_ray
    from snt_search.space import load_space

    space = load_space(args.space)
    options = StudyOptions(n_trials=args.trials, storage=args.storage, show_progress=False)
    report: dict[str, Any] = {}
    worker = None
    try:
        if args.cluster:
            _stamp("cluster starts")
            worker, report = _start_cluster()
            ray_options = RayOptions(address=f"127.0.0.1:{PORT}", max_failures=3)
            if args.kill_worker:
                watch = threading.Thread(
                    target=_kill_when_busy,
                    args=(args.storage, space.name, report["worker"], worker, report),
                    daemon=True,
                )
                watch.start()
        else:
            ray_options = RayOptions(num_cpus=1, object_store_memory=100_000_000)
        _stamp("study starts")
        outcome = run_study_ray(space, options, ray_options)
        _stamp("study ends")
        report.update(finished=outcome.finished, failed=outcome.failed, ran=outcome.ran)
    finally:
        if args.cluster:
            import ray

            ray.shutdown()  # before the cluster goes, or this process waits for it to return
            _stamp("ray.shutdown done")
            subprocess.run([RAY, "stop", "--force"], capture_output=True)
            _stamp("ray stop done")
        if worker is not None:
            worker.kill()
    print("RESULT " + json.dumps(report), flush=True)


def _start_cluster() -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """A head and a worker node, 1 CPU each, both on 127.0.0.1; returns the worker's process."""
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(
        [RAY, "start", "--head", f"--port={PORT}", "--include-dashboard=false", *NODE],
        check=True,
        **quiet,
    )
    worker = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
        + [RAY, "start", f"--address=127.0.0.1:{PORT}", "--block", *NODE],
        **quiet,
    )
    import ray

    ray.init(address=f"127.0.0.1:{PORT}", logging_level="WARNING", log_to_driver=False)
    deadline = time.monotonic() + 120
    while True:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        if len(nodes) == 2:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker node did not join within 120 s: {nodes}")
        time.sleep(0.5)
    head = next(n for n in nodes if "node:__internal_head__" in n["Resources"])
    other = next(n for n in nodes if n is not head)
    ips = sorted({n["NodeManagerAddress"] for n in nodes})
    return worker, {"head": head["NodeID"], "worker": other["NodeID"], "node_ips": ips}


def _kill_when_busy(
    storage: str,
    study_name: str,
    node_id: str,
    worker: subprocess.Popen[bytes],
    report: dict[str, Any],
) -> None:
    """Kill the worker node once a trial there has reported an epoch (mid-trial)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    while worker.poll() is None:
        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
            running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        except Exception:  # the study does not exist yet, or the database is busy
            running = []
        busy = [t for t in running if t.user_attrs.get("ray_node_id") == node_id]
        if busy:
            worker.kill()
            report.update(killed_trial=busy[0].number, killed_at=time.time())
            return
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
