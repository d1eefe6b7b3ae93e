"""The example third-party package, pip-installed: listed, its space found, usable in a study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "plugins" / "example-plugin"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


def cli(site: Path, cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(
        [sys.executable, "-m", "snt_search", *argv],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
    )


def test_installed_plugins_are_listed_with_their_distribution(site: Path, tmp_path: Path) -> None:
    out = cli(site, tmp_path, "plugins", "--json", "--strict")
    assert out.returncode == 0, out.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(out.stdout)}
    for key in (("backbone", "tiny_cnn"), ("compressor", "random_prune")):
        assert rows[key]["dist"] == "snt-search-example-plugin" and rows[key]["version"] == "0.1.0"
        assert not rows[key]["builtin"] and rows[key]["error"] is None
    spaces = {r["name"]: r for r in json.loads(cli(site, tmp_path, "spaces", "--json").stdout)}
    assert spaces["tiny_random_prune"]["origin"] == "snt-search-example-plugin[example]"


def test_autoload_switch_hides_them(site: Path, tmp_path: Path) -> None:
    out = cli(site, tmp_path, "plugins", "--json", SNT_SEARCH_DISABLE_PLUGIN_AUTOLOAD="1")
    names = {r["name"] for r in json.loads(out.stdout)}
    assert "tiny_cnn" not in names and "mixer_s" in names


def test_a_study_uses_the_third_party_plugins(site: Path, tmp_path: Path) -> None:
    out = cli(site, tmp_path, "study", "--space", "tiny_random_prune", "--trials", "2", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["finished"] == 2
    import optuna

    study = optuna.load_study(
        study_name="tiny_random_prune", storage=f"sqlite:///{tmp_path}/snt-search.db"
    )
    used = {t.user_attrs["config"]["plugins"]["backbone"] for t in study.trials}
    assert used == {"tiny_cnn"}
    # its power-method lambda_max converges within the space's max_iter: the trials count
    assert [t.user_attrs.get("off_front_reason") for t in study.trials] == [None, None]
    assert [t.user_attrs["sharpness_report"]["converged"] for t in study.trials] == [True, True]


def test_the_example_conformance_tests_pass(site: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout


def test_the_example_compressor_refuses_bad_input_with_a_plugin_error(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As docs/plugins.md says: a PluginError, which fails the trial with its message (a
    ValueError would count as an unexpected error)."""
    monkeypatch.syspath_prepend(str(site))
    from snt_example_plugin.random_prune import RandomPrune
    from snt_search.specs import CompressionContext, PluginError

    prune = RandomPrune()
    prune.name = "random_prune"
    with pytest.raises(PluginError, match=r"sparsity must be in \[0, 1\), got 1.5; set comp"):
        prune.compress(torch.nn.Linear(2, 2), CompressionContext(), sparsity=1.5)
