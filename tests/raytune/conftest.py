"""Ray tests run every Ray process inside a sandbox: new network, PID and mount namespaces.

Ray binds its nodes to the machine's primary interface and ignores ``--node-ip-address
127.0.0.1``; in a network namespace holding only ``lo``, 127.0.0.1 is the only address there
is, so no Ray traffic can leave the machine. The PID namespace ends every process of the
sandbox when it ends (``--kill-child``), so no Ray process outlives a test, and ``ray stop``
inside it sees only the sandbox's own nodes. HOME and RAY_TMPDIR point into the test's
folder, so Ray's session files and auth token never touch the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY_SPACE, missing_service

SCRIPT = Path(__file__).with_name("sandbox_study.py")
UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]
FAST_FAILURE_DETECTION = {  # a dead node is noticed in ~5 s instead of ~30 s
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "5",
}


def _sandbox_works() -> str | None:
    """None if namespaces can be made here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs util-linux `unshare` and iproute2 `ip` to isolate Ray on loopback"
    probe = subprocess.run(
        [*UNSHARE, "sh", "-c", "ip link set lo up"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"cannot create network/PID namespaces here ({probe.stderr.strip()[:200]})"
    return None


@pytest.fixture(scope="session")
def sandbox_ok() -> None:
    reason = _sandbox_works()
    if reason:
        missing_service(f"Ray tests run in a loopback-only network namespace, which {reason}")


class Sandbox:
    """A test's folder (working directory, HOME, ``space.toml``) and its short Ray temp dir."""

    def __init__(self, folder: Path, ray_tmp: Path) -> None:
        self.folder, self.ray_tmp = folder, ray_tmp
        (folder / "home").mkdir(exist_ok=True)
        (folder / "space.toml").write_text(slow_space())

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start ``sandbox_study.py space.toml ARGS`` in a sandbox (see the module docstring)."""
        env = {
            **os.environ,
            "HOME": str(self.folder / "home"),
            "RAY_TMPDIR": str(self.ray_tmp),
            "RAY_USAGE_STATS_ENABLED": "0",
            "TUNE_GLOBAL_CHECKPOINT_S": "1",  # snapshot the experiment every second, not 10
            **FAST_FAILURE_DETECTION,
        }
        command = 'ip link set lo up && "$@"'  # sh stays PID 1 and reaps orphans
        script = [sys.executable, str(SCRIPT), "space.toml", *args]
        return subprocess.Popen(
            [*UNSHARE, "sh", "-c", command, "sh", *script],
            cwd=self.folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


@pytest.fixture
def sandbox(tmp_path: Path, sandbox_ok: None) -> Iterator[Sandbox]:
    ray_tmp = Path(tempfile.mkdtemp(prefix="snt-ray-"))  # Ray's socket paths must stay short
    yield Sandbox(tmp_path, ray_tmp)
    _remove(ray_tmp)


def _remove(folder: Path) -> None:
    """Remove a sandbox's Ray temp dir; its last processes may still be writing logs."""
    for _ in range(5):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(1)


def slow_space(epochs: int = 12, train_size: int = 512) -> str:
    """TINY_SPACE with enough data and epochs that a trial spans several seconds."""
    extra = textwrap.dedent(
        f"""\
        "dataset.synthetic.train_size" = {train_size}
        "train.epochs" = {epochs}
        """
    )
    return TINY_SPACE.replace('"dataset.synthetic.train_size" = 96\n', extra)


def finish(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """Wait for a sandbox; return its RESULT, or fail with its output."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # --kill-child: the sandbox and every Ray process in it go
        out, _ = proc.communicate()
        pytest.fail(f"the sandboxed study took over {timeout:.0f} s:\n{out[-6000:]}")
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, out[-6000:]
    return json.loads(lines[-1].removeprefix("RESULT "))  # type: ignore[no-any-return]
