"""Ray options, command-line flags and the errors that come before any Ray process starts."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

from snt_search.driver import StudyOptions
from snt_search.ray import (
    RayNotInstalled,
    RayOptions,
    RayStudyError,
    add_ray_arguments,
    options_from_args,
    require_ray,
    run_study_ray,
)
from snt_search.space import load_space


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_ray_arguments(parser)
    return parser.parse_args(argv)


def test_flags_become_ray_options() -> None:
    assert options_from_args(_parse()) is None  # --driver local by default
    options = options_from_args(
        _parse("--driver", "ray", "--ray-address", "10.0.0.1:6379", "--ray-max-failures", "5")
    )
    assert options == RayOptions(address="10.0.0.1:6379", max_failures=5)
    storage = options_from_args(_parse("--driver", "ray", "--ray-storage", "s3://bucket/runs"))
    assert storage is not None and storage.storage_path == "s3://bucket/runs"


def test_ray_flags_without_the_ray_driver_are_refused() -> None:
    with pytest.raises(RayStudyError, match="--ray-address only applies to --driver ray"):
        options_from_args(_parse("--ray-address", "host:6379"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_failures": -1}, r"--ray-max-failures must be >= 0"),
        ({"max_concurrent": 0}, r"--ray-max-concurrent must be >= 1"),
        ({"address": "h:1", "num_cpus": 2}, r"num_cpus=.*joins an existing cluster.*ray start"),
    ],
)
def test_bad_ray_options_say_the_rule_and_the_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RayStudyError, match=message):
        RayOptions(**kwargs)  # type: ignore[arg-type]


def test_missing_ray_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.split(".")[0] == "ray" else real(name, *a),
    )
    with pytest.raises(RayNotInstalled, match=r'pip install "snt-search\[ray\]"') as info:
        require_ray()
    assert isinstance(info.value, ImportError) and isinstance(info.value, ValueError)
    with pytest.raises(RayNotInstalled):
        options_from_args(_parse("--driver", "ray"))


@pytest.mark.parametrize(
    ("section", "device", "message"),
    [
        ("", "cuda", r"--device cuda .* reserves no GPU .* gpus = 1"),
        ("\n[resources]\ngpus = 0.25\n", "cpu", r"gpus = 0.25 per trial but --device cpu"),
    ],
)
def test_device_and_gpu_share_must_agree(
    tiny_space: Path, section: str, device: str, message: str
) -> None:
    tiny_space.write_text(tiny_space.read_text() + section)
    options = StudyOptions(n_trials=1, device=device, show_progress=False)
    with pytest.raises(RayStudyError, match=message):
        run_study_ray(load_space(tiny_space), options)  # refused before Ray starts
