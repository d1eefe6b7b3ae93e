"""The [resources] section: what one trial reserves on Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY_SPACE

from snt_search.resources import TrialResources
from snt_search.space import SpaceError, load_space


def _space(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(TINY_SPACE + section)
    return path


def test_resources_default_to_one_cpu_and_parse_fractional_gpus(tmp_path: Path) -> None:
    assert load_space(_space(tmp_path, "")).resources == TrialResources(cpus=1.0, gpus=0.0)
    space = load_space(_space(tmp_path, "\n[resources]\ncpus = 2\ngpus = 0.25\n"))
    assert space.resources == TrialResources(cpus=2, gpus=0.25)
    assert space.resources.as_ray() == {"cpu": 2, "gpu": 0.25}


def test_resources_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    plain = load_space(_space(tmp_path, ""))
    shared = load_space(_space(tmp_path, "\n[resources]\ngpus = 0.5\n"))
    assert plain.fingerprint == shared.fingerprint  # a study resumes on other hardware


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("cpus = 0", r"\[resources\] cpus must be > 0, got 0"),
        ("gpus = -1", r"\[resources\] gpus must be >= 0, got -1"),
        ("gpus = 1.5", r"gpus above 1 must be a whole number, got 1.5.*gpus = 0.5"),
        ("gpu = 1", r"\[resources\] unknown key 'gpu'; allowed: cpus, gpus"),
        ('cpus = "one"', r"\[resources\] cpus must be float, got 'one'"),
    ],
)
def test_bad_resources_name_the_file_the_rule_and_the_fix(
    tmp_path: Path, section: str, message: str
) -> None:
    with pytest.raises(SpaceError, match=message) as info:
        load_space(_space(tmp_path, f"\n[resources]\n{section}\n"))
    assert str(info.value).startswith(str(tmp_path / "s.toml"))
