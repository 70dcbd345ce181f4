"""Masks at keypoints: the one dilation and the one sampler of a pixel mask [B, H, W] at subpixel
keypoints [B, N, 2], used for highlight masks and regions of interest alike.

Pixel convention (as LightGlue's extractors): integer coordinates are pixel centres, so the
keypoint (x, y) falls in pixel (round(x), round(y)), clamped to the image (a keypoint on the
border, e.g. x = W - 0.5, takes the border pixel). Pixels outside the image are not set: a
dilation does not grow a mask in from the border.
"""

from __future__ import annotations

import torch

from ..ops.filters import max_filter


def dilate_mask(mask: torch.Tensor, margin: int) -> torch.Tensor:
    """Grow a mask [B, H, W] (bool or float in [0, 1]) by ``margin`` pixels (square window,
    i.e. Chebyshev distance <= margin). Float masks take the window maximum."""
    if margin <= 0:
        return mask
    grown = max_filter(mask.float(), int(margin))  # [B, H, W]
    return grown > 0.5 if mask.dtype == torch.bool else grown.to(mask.dtype)


def sample_mask(mask: torch.Tensor, keypoints: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """Specularity of each keypoint.

    Args:
        mask: [B, H, W] bool, or float in [0, 1] (soft masks); True / 1 means specular.
        keypoints: [B, N, 2] pixel (x, y); each takes its nearest pixel in the image.
        margin: safety margin in pixels: a keypoint within ``margin`` px of a specular pixel
            counts as specular.
    Returns:
        [B, N] float specularity in [0, 1].
    """
    mask = dilate_mask(mask, margin).float()
    b, h, w = mask.shape
    xy = keypoints.to(mask.device).round().long()  # [B, N, 2]
    flat = xy[..., 1].clamp(0, h - 1) * w + xy[..., 0].clamp(0, w - 1)  # [B, N]
    return mask.flatten(1).gather(1, flat).to(keypoints.device)
