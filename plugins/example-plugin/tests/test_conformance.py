"""What a plugin author writes: one test per plugin, checked against its kind's contract.

Run with pytest (``pip install pytest``): ``python -m pytest tests``.
"""

from __future__ import annotations

import pytest

from snt_example_plugin.random_prune import RandomPrune
from snt_example_plugin.tiny_cnn import TinyCNN
from snt_search.registry import get_registry
from snt_search.testing import check_plugin


def test_tiny_cnn_conforms() -> None:
    check_plugin(TinyCNN)


def test_random_prune_conforms_also_on_tiny_cnn() -> None:
    check_plugin(RandomPrune, backbone=TinyCNN)


def test_the_transforms_a_tiny_cnn_takes() -> None:
    """Eq. 1 applies to any model with activation modules; ``preact`` knows only the built-in
    residual block types, so a study over tiny_cnn searches none, lbias_prelu and snt."""
    registry = get_registry()
    check_plugin(registry.get("transform", "lbias_prelu"), backbone=TinyCNN)
    with pytest.warns(UserWarning, match="only the activations are swapped"):
        check_plugin(registry.get("transform", "snt"), backbone=TinyCNN)
    with pytest.raises(AssertionError, match="preact refused the backbone TinyCNN"):
        check_plugin(registry.get("transform", "preact"), backbone=TinyCNN)
