"""Eq. 1 as a PyTorch operator whose autograd node is C++: ``torch.ops.snt_search.eq1``/``eq1_``.

:class:`~snt_search.layers.lbias_prelu.LBiasPReLU` first ran its one-pass loops
(:mod:`snt_search.layers.eq1_kernels`) from a Python ``autograd.Function``, paying per call,
beyond the loops, for the Function's Python, the layout checks and ``ctypes`` argument
conversion, 19 times per ResNet-20 step. ``eq1_op.cpp`` puts the same loops behind a
registered operator with a C++ ``autograd::Function``. Measured on a 2-core CPU
(``bench/eq1_layer.py``): a forward + backward pair on a tiny tensor 110 -> 88 µs (an in-place
ReLU: 15 µs; what is left is mostly the autograd node with four inputs and three parameter
gradients); ResNet-20's ``snt``/``none`` step 1.055-1.062x -> 1.033-1.037x (one thread,
``docs/benchmarks.md``).

Built on first use like the loops (``$CXX``, else ``g++``; cached in
:func:`~snt_search.layers.native_build.cache_dir`, keyed by the sources, flags, CPU and torch
version), against the installed torch's C++ headers (C++20; 10-30 s once). If it cannot be
built (no compiler, no torch headers), :func:`ops` returns None after one warning and
``LBiasPReLU`` keeps its Python ``autograd.Function`` (same results). ``SNT_SEARCH_COMPILE=0``
turns both off.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import torch

from . import eq1_kernels, native_build

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
    return native_build.build(
        "eq1_op",
        _SOURCE,
        std="c++20",
        extra=["-w", *_torch_flags()],
        link=["-ltorch", "-ltorch_cpu", "-lc10"],
        also_hashed=[_LOOPS],
        key=torch.__version__,
    )
