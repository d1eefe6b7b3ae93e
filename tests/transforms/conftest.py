"""One intra-op thread per test: tiny models run in milliseconds, and two threads spinning on
a shared, busy 2-core machine made them take seconds. Restored after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def compiler_rejecting(tmp_path: Path, option: str) -> Path:
    """A ``g++`` wrapper that fails, as an older or another compiler would, on ``option``."""
    cxx = tmp_path / "picky-g++"
    cxx.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *{option}*) echo "error: unrecognized option {option}" >&2; exit 1;; esac\n'
        'exec g++ "$@"\n'
    )
    cxx.chmod(0o755)
    return cxx
