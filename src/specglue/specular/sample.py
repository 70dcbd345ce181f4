"""Specular masks at keypoints: sample a pixel mask [B, H, W] at subpixel keypoints [B, N, 2].

Pixel convention (as LightGlue's extractors): integer coordinates are pixel centres, so the
keypoint (x, y) falls in pixel (round(x), round(y)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dilate_mask(mask: torch.Tensor, margin: int) -> torch.Tensor:
    """Grow a mask [B, H, W] (bool or float in [0, 1]) by ``margin`` pixels (square window,
    i.e. Chebyshev distance <= margin). Float masks take the window maximum."""
    if margin <= 0:
        return mask
    x = mask.float()[:, None]  # [B, 1, H, W]
    k = 2 * int(margin) + 1
    x = F.max_pool2d(x, (1, k), stride=1, padding=(0, int(margin)))  # separable max filter
    x = F.max_pool2d(x, (k, 1), stride=1, padding=(int(margin), 0))
    x = x[:, 0]
    return x > 0.5 if mask.dtype == torch.bool else x.to(mask.dtype)


def sample_mask(mask: torch.Tensor, keypoints: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """Specularity of each keypoint.

    Args:
        mask: [B, H, W] bool, or float in [0, 1] (soft masks); True / 1 means specular.
        keypoints: [B, N, 2] pixel (x, y). Keypoints outside the mask get 0.
        margin: safety margin in pixels: a keypoint within ``margin`` px of a specular pixel
            counts as specular.
    Returns:
        [B, N] float specularity in [0, 1].
    """
    mask = dilate_mask(mask, margin).float()
    b, h, w = mask.shape
    xy = keypoints.round().long()  # [B, N, 2]
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
    flat = xy[..., 1].clamp(0, h - 1) * w + xy[..., 0].clamp(0, w - 1)  # [B, N]
    values = mask.flatten(1).gather(1, flat)
    return torch.where(inside, values, torch.zeros_like(values))
