"""The layers' C++ build cache: a flag set the compiler rejected is not retried once a
library is cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from snt_search.layers import native_build

from .conftest import compiler_rejecting

SOURCE = 'extern "C" int answer() { return 42; }\n'


def test_a_rejected_flag_set_is_not_retried_once_a_library_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "answer.cpp"
    source.write_text(SOURCE)
    cxx = compiler_rejecting(tmp_path, "-mprefer-vector-width")
    calls = tmp_path / "calls"
    logged = tmp_path / "logged-g++"  # counts every compiler run
    logged.write_text(f'#!/bin/sh\necho x >> {calls}\nexec {cxx} "$@"\n')
    logged.chmod(0o755)
    monkeypatch.setenv("CXX", str(logged))
    monkeypatch.setenv("SNT_SEARCH_CACHE_DIR", str(tmp_path / "cache"))

    first = native_build.build("answer", source)
    assert len(calls.read_text().split()) == 2  # the rejected set, then the next one
    assert native_build.build("answer", source) == first  # as a new process would ask
    assert len(calls.read_text().split()) == 2  # no compiler run the second time
    source.write_text(SOURCE + "// changed\n")
    assert native_build.build("answer", source) != first  # a changed source is rebuilt
