"""Reusable layers (e.g. the learnable-bias PReLU of SNT, Eq. 1)."""
