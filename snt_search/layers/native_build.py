"""Compiling the layers' C++ on first use, cached on disk: one library per source, flags and CPU.

Both native pieces of :mod:`snt_search.layers` are built here: the one-pass Eq. 1 loops
(``eq1.cpp``, loaded with ``ctypes`` by :mod:`~snt_search.layers.eq1_kernels`) and the Eq. 1
operator (``eq1_op.cpp``, loaded with ``torch.ops.load_library`` by
:mod:`~snt_search.layers.eq1_op`). The compiler is ``$CXX``, else ``g++``; the flag sets of
:data:`FLAG_SETS` are tried in order and the first one the compiler accepts is used. Libraries
go to :func:`cache_dir`, named by a hash of the sources, the command line and the CPU (what
``-march=native`` depends on), and are written to a temporary name then renamed, so workers
building the same library at once never load half of one.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["FLAG_SETS", "build", "cache_dir", "cpu_id"]

# Tried in order: the first set the compiler accepts is used (no OpenMP: one thread).
# 512-bit vectors where the CPU has AVX-512 (gcc prefers 256): ResNet-20's snt/none step
# 1.17-1.19x -> 1.06-1.09x in two A/B runs of bench/transform_overhead.py on an AMX Xeon.
FLAG_SETS = (
    ("-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp"),
    ("-O3", "-march=native", "-fopenmp"),
    ("-O3", "-fopenmp"),
    ("-O3",),
)


def cache_dir() -> Path:
    """Where built kernels are kept: ``$SNT_SEARCH_CACHE_DIR`` or ``~/.cache/snt_search/kernels``."""
    if os.environ.get("SNT_SEARCH_CACHE_DIR"):
        return Path(os.environ["SNT_SEARCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "snt_search" / "kernels"


def cpu_id() -> str:
    """What ``-march=native`` depends on: the machine and its CPU feature flags."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


def build(
    name: str,
    source: Path,
    *,
    std: str = "c++17",
    extra: Sequence[str] = (),
    link: Sequence[str] = (),
    also_hashed: Sequence[Path] = (),
    key: str = "",
) -> Path:
    """The shared library ``<name>-<hash>.so`` built from ``source``, compiling it if needed.

    ``extra`` goes on the command line (include paths, defines), ``link`` after the source;
    ``also_hashed`` are files the source includes and ``key`` anything else the library
    depends on (a torch version): both enter the cache key. Raises ``RuntimeError`` naming
    each flag set tried and the compiler's first error line when none builds.
    """
    cxx = os.environ.get("CXX", "g++")
    content = b"".join(p.read_bytes() for p in (source, *also_hashed))
    salt = (cpu_id() + key).encode()
    candidates = []
    for flags in FLAG_SETS:
        args = [cxx, *flags, "-shared", "-fPIC", f"-std={std}", *extra]
        digest = hashlib.sha256(content + " ".join(args).encode() + salt)
        candidates.append((flags, args, cache_dir() / f"{name}-{digest.hexdigest()[:16]}.so"))
    # A library built before with any flag set: a set this compiler rejected is not retried
    # in every new process.
    for _, _, lib_path in candidates:
        if lib_path.exists():
            return lib_path
    errors = []
    for flags, args, lib_path in candidates:
        lib_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = lib_path.with_name(f".{lib_path.name}.{os.getpid()}.tmp")
        run = subprocess.run(
            [*args, str(source), "-o", str(tmp), *link], capture_output=True, text=True, check=False
        )
        if run.returncode == 0:
            os.replace(tmp, lib_path)  # atomic: a concurrent worker sees all of it or nothing
            return lib_path
        tmp.unlink(missing_ok=True)
        lines = run.stderr.strip().splitlines()
        first = next((ln for ln in lines if "error" in ln), lines[-1] if lines else "")
        errors.append(f"{' '.join(flags)}: {first or f'exit code {run.returncode}'}")
    raise RuntimeError("; ".join(errors))
