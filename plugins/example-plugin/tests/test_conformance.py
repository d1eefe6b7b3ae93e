"""What a plugin author writes: one test per plugin, checked against its kind's contract."""

from __future__ import annotations

from snt_example_plugin.random_prune import RandomPrune
from snt_example_plugin.tiny_cnn import TinyCNN
from snt_search.testing import check_plugin


def test_tiny_cnn_conforms() -> None:
    check_plugin(TinyCNN)


def test_random_prune_conforms() -> None:
    check_plugin(RandomPrune)
