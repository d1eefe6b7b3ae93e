"""Eq. 1 as a PyTorch operator whose autograd node is C++: ``torch.ops.snt_search.eq1``/``eq1_``.

:class:`~snt_search.layers.lbias_prelu.LBiasPReLU` first ran its one-pass loops
(:mod:`snt_search.layers.eq1_kernels`) from a Python ``autograd.Function``; what that cost
per call beyond the loops themselves (the Function's Python, the layout checks, ``ctypes``
argument conversion: about 60-75 µs per forward + backward pair on a 2-core CPU, against
~14 µs for an in-place ReLU) was paid 19 times per ResNet-20 step. ``eq1_op.cpp`` puts the
same loops behind a registered operator with a C++ ``autograd::Function``, so that part costs
what a built-in op's does (``docs/benchmarks.md``).

Built on first use like the loops (``$CXX``, else ``g++``; cached in
:func:`~snt_search.layers.eq1_kernels.cache_dir`, keyed by the sources, flags, CPU and torch
version), against the installed torch's C++ headers (C++20; 10-30 s once). If it cannot be
built (no compiler, no torch headers), :func:`ops` returns None after one warning and
``LBiasPReLU`` keeps its Python ``autograd.Function`` (same results). ``SNT_SEARCH_COMPILE=0``
turns both off.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import warnings
from pathlib import Path
from typing import Any

import torch

from . import eq1_kernels

__all__ = ["ops"]

_SOURCE = Path(__file__).with_name("eq1_op.cpp")
_LOOPS = Path(__file__).with_name("eq1.cpp")
_lock = threading.Lock()
_loaded: list[Any] = []
_failed: list[str] = []


def ops() -> Any | None:
    """``torch.ops.snt_search`` with ``eq1``/``eq1_`` loaded, building them on the first call;
    None when compiling is off or a build failed (the loops' failure is warned about by
    :func:`~snt_search.layers.eq1_kernels.library`, which is tried first)."""
    if eq1_kernels.library() is None:
        return None
    if _loaded or _failed:
        return _loaded[0] if _loaded else None
    with _lock:
        if not _loaded and not _failed:
            try:
                torch.ops.load_library(str(_build()))
                _loaded.append(torch.ops.snt_search)
            except Exception as exc:  # noqa: BLE001 - any failure keeps the Python Function
                _failed.append(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
                warnings.warn(
                    f"LBiasPReLU: could not build the C++ Eq. 1 operator ({_failed[-1]}); using "
                    f"the Python autograd.Function (same results, ~60 µs more per call). It "
                    f"needs a C++20 compiler (g++ >= 10) and torch's C++ headers; set "
                    f"SNT_SEARCH_COMPILE=0 to skip trying.",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _loaded[0] if _loaded else None


def _torch_flags() -> list[str]:
    """The installed torch's headers, libraries and C++ ABI (what ``torch.utils.cpp_extension``
    would use for a CPU extension; importing that module costs a second and a CUDA warning)."""
    root = Path(torch.__file__).parent
    include, lib = root / "include", root / "lib"
    return [
        f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
        f"-I{include}",
        f"-I{include / 'torch' / 'csrc' / 'api' / 'include'}",
        f"-L{lib}",
        f"-Wl,-rpath,{lib}",
    ]


def _build() -> Path:
    cxx = os.environ.get("CXX", "g++")
    source = _SOURCE.read_bytes() + _LOOPS.read_bytes()
    torch_flags = _torch_flags()
    errors = []
    for flags in eq1_kernels.FLAG_SETS:
        args = [cxx, *flags, "-shared", "-fPIC", "-std=c++20", "-w", *torch_flags]
        key = hashlib.sha256(
            source + " ".join(args).encode() + eq1_kernels.cpu_id().encode()
            + torch.__version__.encode()
        ).hexdigest()  # fmt: skip
        lib_path = eq1_kernels.cache_dir() / f"eq1_op-{key[:16]}.so"
        if lib_path.exists():
            return lib_path
        lib_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = lib_path.with_name(f".{lib_path.name}.{os.getpid()}.tmp")
        link = ["-ltorch", "-ltorch_cpu", "-lc10"]
        run = subprocess.run(
            [*args, str(_SOURCE), "-o", str(tmp), *link],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode == 0:
            os.replace(tmp, lib_path)  # atomic: a concurrent worker sees all of it or nothing
            return lib_path
        tmp.unlink(missing_ok=True)
        first = next((ln for ln in run.stderr.splitlines() if "error" in ln), "")
        errors.append(f"{' '.join(flags)}: {first or f'exit code {run.returncode}'}")
    raise RuntimeError("; ".join(errors))
