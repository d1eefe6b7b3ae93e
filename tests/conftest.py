"""Shared fixtures: fake installed distributions, an isolated working directory, tiny spaces."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from snt_search.registry import reset_registry

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory (the default SQLite storage and runs/ land here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


FakeDist = Callable[..., Path]


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDist:
    """Make an installed distribution on sys.path with entry points and modules.

    ``fake_dist("acme", {"snt_search.backbones": {"tiny": "acme_mod:Tiny"}}, {"acme_mod": "code"})``
    is found by importlib.metadata exactly like a pip-installed package.
    """

    def make(name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]) -> Path:
        root = tmp_path / f"site-{name}"
        info = root / f"{name.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{k} = {v}" for k, v in eps.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for mod, code in modules.items():
            (root / f"{mod}.py").write_text(textwrap.dedent(code))
        monkeypatch.syspath_prepend(str(root))
        for mod in modules:
            sys.modules.pop(mod, None)
        return root

    return make


TINY_SPACE = """
[study]
name = "tiny"
sampler = "random"
seed = 0

[objectives]
lambda_max = "minimize"
accuracy_drop = "minimize"

[plugins]
dataset = "synthetic"
backbone = "mixer_s"
transform = ["none", "snt"]
optimizer = ["adam", "sam"]
compressor = "magnitude_prune"

[params]
"dataset.synthetic.train_size" = 96
"dataset.synthetic.test_size" = 64
"backbone.mixer_s.num_blocks" = 1
"backbone.mixer_s.embed_dim" = 16
"backbone.mixer_s.patch_size" = 8
"train.lr" = { low = 1e-3, high = 1e-2, log = true }
"optimizer.sam.rho" = { low = 0.01, high = 0.1 }
"compressor.magnitude_prune.sparsity" = 0.5

[sharpness]
method = "lanczos"
samples = 32
batch_size = 32
max_iter = 30                   # Lanczos converges in 15-20 here; unconverged is off the front

[budgets.smoke]
epochs = 1
batch_size = 32
"""


@pytest.fixture
def tiny_space(workdir: Path) -> Path:
    """A space file whose trials take about a second each."""
    path = workdir / "tiny.toml"
    path.write_text(TINY_SPACE)
    return path


def missing_service(reason: str) -> None:
    """Skip a test whose service (PostgreSQL, network namespaces for Ray) is not here, or fail
    it where it must be: ``.ci/run`` sets ``SNT_SEARCH_REQUIRE_SERVICES=1``, so CI never
    passes with those tests silently skipped."""
    if os.environ.get("SNT_SEARCH_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; SNT_SEARCH_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)
