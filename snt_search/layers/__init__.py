"""Reusable layers (e.g. the learnable-bias PReLU of SNT, Eq. 1)."""

from __future__ import annotations

from .lbias_prelu import LBiasPReLU

__all__ = ["LBiasPReLU"]
