"""The cluster template in deploy/ is valid for the installed Ray's cluster launcher."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_cluster_yaml_passes_the_launchers_schema() -> None:
    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(config))  # raises on an unknown or mistyped field
    workers = config["available_node_types"]["gpu_worker"]
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}  # no trials there
    assert workers["node_config"]["InstanceType"].startswith("g")  # a GPU instance type
    assert any("snt-search[ray]" in c for c in config["setup_commands"])
