"""Value rules checked before any trial runs: plugins' declared ``ranges`` and TrainConfig's
own rules, on fixed values, choices and the bounds of searched ranges."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY_SPACE

from snt_search.config import TrainConfig
from snt_search.registry import get_registry
from snt_search.space import SpaceError, load_space
from snt_search.specs import PluginError, Range


def test_range_admits_and_reads() -> None:
    positive = Range(0.0, low_open=True)
    assert not positive.admits(0.0) and positive.admits(1e-9) and str(positive) == "(0, inf)"
    unit = Range(0.0, 1.0, high_open=True)
    assert unit.admits(0.0) and not unit.admits(1.0) and str(unit) == "[0, 1)"
    assert str(Range(2, 8)) == "[2, 8]" and Range(2, 8).admits(8)


def test_every_builtin_default_lies_in_its_declared_range() -> None:
    registry = get_registry()
    checked = 0
    for kind in ("dataset", "backbone", "transform", "optimizer", "compressor"):
        for name in registry.names(kind):
            plugin = registry.get(kind, name)
            assert set(plugin.ranges) <= set(plugin.defaults), (kind, name)
            for key in plugin.ranges:
                assert plugin.range_problem(key, plugin.defaults[key]) is None, (kind, name, key)
                checked += 1
    assert checked >= 20


def test_resolve_params_refuses_a_value_outside_the_range() -> None:
    sam = get_registry().get("optimizer", "sam")
    with pytest.raises(
        PluginError, match=r"optimizer 'sam': parameter 'rho' must lie in \(0, inf\), got 0"
    ):
        sam.resolve_params({"rho": 0})


def write(tmp_path: Path, old: str, new: str) -> Path:
    assert old in TINY_SPACE
    path = tmp_path / "space.toml"
    path.write_text(TINY_SPACE.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '"optimizer.sam.rho" = { low = 0.01, high = 0.1 }',
            '"optimizer.sam.rho" = { low = 0.0, high = 0.1 }',
            r"'optimizer.sam.rho': parameter 'rho' must lie in \(0, inf\), got 0.0",
        ),
        (
            '"compressor.magnitude_prune.sparsity" = 0.5',
            '"compressor.magnitude_prune.sparsity" = { choices = [0.5, 1.0] }',
            r"parameter 'sparsity' must lie in \[0, 1\), got 1.0",
        ),
        (
            '"train.lr" = { low = 1e-3, high = 1e-2, log = true }',
            '"train.lr" = { low = 0.0, high = 1e-2 }',
            r"train.lr must be > 0, got 0.0",
        ),
        (
            '"train.lr" = { low = 1e-3, high = 1e-2, log = true }',
            '"train.schedule" = "bogus"',
            r"train.schedule must be one of \('cosine', 'step', 'constant'\), got 'bogus'",
        ),
    ],
)
def test_a_space_with_a_value_outside_the_rules_is_refused_before_any_trial(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(SpaceError, match=message):
        load_space(write(tmp_path, old, new)).check(get_registry())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("lr", -1.0),
        ("weight_decay", -1e-4),
        ("label_smoothing", 1.0),
    ],
)
def test_train_config_rules(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"train.{field} must be"):
        TrainConfig(**{field: value})
