"""The square max filter behind non-maximum suppression and mask dilation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def max_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Maximum over the ``(2r+1) x (2r+1)`` window of every pixel of maps ``[..., H, W]``;
    pixels outside the map take no part (as ``max_pool2d`` with padding).

    A row pass and a column pass of ``max_pool1d``: the same values as ``max_pool2d`` (max is
    exact), which on one-channel maps ran 20-50x slower on the CPU (5.6 ms against 0.12 ms for a
    5x5 window on 240x320, AMD EPYC, torch 2.13).
    """
    if radius <= 0:
        return x
    *lead, h, w = x.shape
    k = 2 * int(radius) + 1
    maps = x.reshape(-1, h, w)  # [M, H, W]
    maps = F.max_pool1d(maps, k, stride=1, padding=int(radius))  # rows
    maps = F.max_pool1d(maps.transpose(-1, -2), k, stride=1, padding=int(radius)).transpose(-1, -2)
    return maps.reshape(*lead, h, w)


__all__ = ["max_filter"]
