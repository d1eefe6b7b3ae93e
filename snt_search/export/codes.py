"""Quantized weights stored as what they are: 8-bit integer codes and a float scale per row.

A weight that ``ptq``/``qat`` (or any symmetric quantizer) left on an integer grid is, row by
row (per output channel) or as a whole, exactly ``codes * scale`` with integer ``codes`` in
``[-(2^(b-1) - 1), 2^(b-1) - 1]`` for some ``b <= 8`` (:mod:`snt_search.compression.quant`).
:func:`encode_state` finds such tensors and stores them as ``int8`` codes plus a ``float32``
scale per row, a quarter of the float32 bytes; every other tensor is stored as it is.

The encoding is lossless by construction: a tensor is encoded only when decoding gives back
every one of its float32 values bit for bit, so nothing depends on the encoder guessing the
bit width right. Names: ``<key>`` becomes ``<key>.__codes__`` and ``<key>.__scale__``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["CODES", "SCALE", "decode_state", "encode_state", "encoded_bits"]

CODES, SCALE = ".__codes__", ".__scale__"
_BITS = tuple(range(2, 9))  # the grids tried, narrowest first
_MIN_NUMEL = 64  # smaller tensors are not worth a scale per row
_ULPS = 3  # float32 neighbours of amax / qmax tried as the scale


def encode_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """``state`` with every exactly-quantized float32 weight as int8 codes + scale.

    Returns the tensors to store (contiguous, on the CPU) and how many were encoded.
    """
    out: dict[str, torch.Tensor] = {}
    encoded = 0
    for key, value in state.items():
        tensor = value.detach().cpu().contiguous()
        found = _encode(tensor) if _candidate(tensor) else None
        if found is None:
            out[key] = tensor
            continue
        codes, scale = found
        out[key + CODES], out[key + SCALE] = codes, scale
        encoded += 1
    return out, encoded


def decode_state(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float state dict :func:`encode_state` encoded (bit-exact)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if key.endswith(SCALE):
            continue
        if key.endswith(CODES):
            name = key.removesuffix(CODES)
            scale = tensors[name + SCALE]
            rows = value.to(torch.float32).reshape(scale.numel(), -1) * scale.view(-1, 1)
            out[name] = rows.reshape(value.shape)
        else:
            out[key] = value
    return out


def encoded_bits(tensors: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Bits each encoded tensor needs (``ceil(log2)`` of its code range), by state-dict key."""
    bits = {}
    for key, value in tensors.items():
        if key.endswith(CODES):
            qmax = int(value.abs().max()) if value.numel() else 0
            bits[key.removesuffix(CODES)] = next((b for b in _BITS if qmax <= 2 ** (b - 1) - 1), 8)
    return bits


def _candidate(t: torch.Tensor) -> bool:
    return t.dtype == torch.float32 and t.dim() >= 1 and t.numel() >= _MIN_NUMEL


def _encode(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Codes and scale reproducing ``t`` exactly, per row or per tensor, else ``None``.

    A NaN or infinite value never compares equal to ``codes * scale``, so such a tensor is
    never encoded."""
    per_row = t.reshape(t.shape[0], -1) if t.dim() > 1 else t.reshape(1, -1)
    for rows in (per_row, t.reshape(1, -1)):
        # Quick refusal: a row of a quantized tensor holds at most 255 distinct values.
        if any(torch.unique(row).numel() > 255 for row in rows[:4, :8192]):
            continue
        for bits in _BITS:
            found = _on_grid(rows, 2 ** (bits - 1) - 1)
            if found is not None:
                codes, scale = found
                return codes.reshape(t.shape), scale
    return None


def _on_grid(rows: torch.Tensor, qmax: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per row, a float32 scale near ``amax / qmax`` with ``codes * scale == row`` exactly."""
    amax = rows.abs().amax(dim=1)
    base = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    scale = torch.full_like(base, float("nan"))
    candidates = [base]
    up = down = base
    for _ in range(_ULPS):  # amax = fl(qmax * s): s is within a few ulps of amax / qmax
        up = torch.nextafter(up, torch.full_like(up, float("inf")))
        down = torch.nextafter(down, torch.zeros_like(down))
        candidates += [up, down]
    for candidate in candidates:
        open_rows = scale.isnan()
        if not bool(open_rows.any()):
            break
        codes = torch.round(rows / candidate.view(-1, 1))
        exact = ((codes * candidate.view(-1, 1)) == rows).all(dim=1)
        exact &= codes.abs().amax(dim=1) <= qmax
        scale = torch.where(open_rows & exact, candidate, scale)
    if bool(scale.isnan().any()):
        return None
    codes = torch.round(rows / scale.view(-1, 1)).to(torch.int8)
    return codes, scale.contiguous()
