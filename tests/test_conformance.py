"""Every registered built-in plugin passes the conformance checks third parties use."""

from __future__ import annotations

import pytest

from snt_search.registry import Registry
from snt_search.specs import DataRequest
from snt_search.testing import check_plugin

REGISTRY = Registry.discover(autoload=False)
# Small sizes so every built-in checks in seconds; datasets that need files are tested in
# test_datasets.py on data the tests make.
PARAMS = {
    ("backbone", "mixer_s"): {"num_blocks": 1, "embed_dim": 16},
}
NEEDS_FILES = {("dataset", "cifar10"), ("dataset", "cifar100"), ("dataset", "imagefolder")}
CHECKED = [r for r in REGISTRY if r.ok and (r.kind, r.name) not in NEEDS_FILES]


@pytest.mark.parametrize("record", CHECKED, ids=lambda r: f"{r.kind}:{r.name}")
def test_builtin_plugin_conforms(record) -> None:  # type: ignore[no-untyped-def]
    plugin = REGISTRY.get(record.kind, record.name)
    kwargs = {"request": DataRequest(download=False)} if record.kind == "dataset" else {}
    check_plugin(plugin, params=PARAMS.get((record.kind, record.name)), **kwargs)
