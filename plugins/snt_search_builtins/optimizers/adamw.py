"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay."""

from __future__ import annotations

import torch

from .adam import Adam


class AdamW(Adam):
    """torch.optim.AdamW (decoupled weight decay); parameters as :class:`Adam`."""

    torch_class = torch.optim.AdamW
