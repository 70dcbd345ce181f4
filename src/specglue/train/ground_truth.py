"""Ground-truth matches of two keypoint sets related by a homography (glue-factory's rule).

The reprojection distance of keypoints ``i`` (image 0) and ``j`` (image 1) is symmetric: the
larger of ``|H x_i - y_j|`` and ``|x_i - H^-1 y_j|``. Labels, per keypoint of each image:

- a match ``j >= 0``: ``i`` and ``j`` are mutual nearest neighbours under that distance and
  closer than ``positive_px`` (3 px);
- :data:`UNMATCHED` (-1): no keypoint of the other image is within ``negative_px``, or the
  point projects outside the other image, or it lies under a highlight (``covered``: a
  synthetic highlight hides the surface, so what is detected there is the highlight, which
  moves with the light; such points are never positives on either side);
- :data:`IGNORE` (-2): everything in between (near a keypoint but not a clean mutual match),
  and the padding of a batch.

The default ``negative_px`` (5) leaves a 3-5 px band that the loss ignores; glue-factory's
homography stage uses 3 / 3 (no band), its MegaDepth stage 3 / 5.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from ..geometry import warp_points

#: label of a keypoint that has no match in the other image
UNMATCHED = -1
#: label of a keypoint the loss leaves out
IGNORE = -2


def matches_from_homography(
    keypoints0: torch.Tensor,
    keypoints1: torch.Tensor,
    H_0to1: torch.Tensor,
    size0: torch.Tensor,
    size1: torch.Tensor,
    valid0: Optional[torch.Tensor] = None,
    valid1: Optional[torch.Tensor] = None,
    covered0: Optional[torch.Tensor] = None,
    covered1: Optional[torch.Tensor] = None,
    positive_px: float = 3.0,
    negative_px: float = 5.0,
) -> Dict[str, torch.Tensor]:
    """Labels of every keypoint (see the module doc).

    Args:
        keypoints0: [B, M, 2] and keypoints1: [B, N, 2] pixel (x, y).
        H_0to1: [B, 3, 3] maps image-0 pixels to image-1 pixels.
        size0, size1: [B, 2] (W, H) of each image.
        valid0, valid1: [B, M], [B, N] bool, False on padding (default: all valid).
        covered0, covered1: [B, M], [B, N] bool, True under a synthetic highlight.
        positive_px / negative_px: the thresholds, ``positive_px <= negative_px``.

    Returns:
        ``matches0`` [B, M] and ``matches1`` [B, N] (int64: index, -1 or -2) and ``distance``
        [B, M, N] (the symmetric reprojection distance, inf where a point is padding or covered).
    """
    if positive_px > negative_px:
        raise ValueError(f"positive_px ({positive_px}) must not exceed negative_px ({negative_px})")
    b, m, n = keypoints0.shape[0], keypoints0.shape[1], keypoints1.shape[1]
    device = keypoints0.device
    valid0 = torch.ones(b, m, dtype=torch.bool, device=device) if valid0 is None else valid0
    valid1 = torch.ones(b, n, dtype=torch.bool, device=device) if valid1 is None else valid1
    free0 = valid0 if covered0 is None else valid0 & ~covered0
    free1 = valid1 if covered1 is None else valid1 & ~covered1

    H = H_0to1.to(torch.float64)
    projected0 = warp_points(keypoints0.to(torch.float64), H)  # [B, M, 2] in image 1
    projected1 = warp_points(keypoints1.to(torch.float64), torch.linalg.inv(H))  # [B, N, 2] in image 0
    distance = torch.maximum(torch.cdist(projected0, keypoints1.to(torch.float64)),
                             torch.cdist(keypoints0.to(torch.float64), projected1))  # [B, M, N]
    distance = distance.masked_fill(~(free0[:, :, None] & free1[:, None, :]), float("inf"))

    nearest0 = distance.min(2)  # for each i: the closest j
    nearest1 = distance.min(1)  # for each j: the closest i
    mutual0 = nearest1.indices.gather(1, nearest0.indices) == torch.arange(m, device=device)[None]
    mutual1 = nearest0.indices.gather(1, nearest1.indices) == torch.arange(n, device=device)[None]
    positive0 = mutual0 & (nearest0.values < positive_px)
    positive1 = mutual1 & (nearest1.values < positive_px)

    outside0 = _outside(projected0, size1)
    outside1 = _outside(projected1, size0)
    unmatched0 = (nearest0.values > negative_px) | outside0
    unmatched1 = (nearest1.values > negative_px) | outside1

    matches0 = torch.full((b, m), IGNORE, dtype=torch.int64, device=device)
    matches0[unmatched0] = UNMATCHED
    matches0 = torch.where(positive0, nearest0.indices, matches0)
    matches1 = torch.full((b, n), IGNORE, dtype=torch.int64, device=device)
    matches1[unmatched1] = UNMATCHED
    matches1 = torch.where(positive1, nearest1.indices, matches1)
    if covered0 is not None:
        matches0 = matches0.masked_fill(covered0, UNMATCHED)
    if covered1 is not None:
        matches1 = matches1.masked_fill(covered1, UNMATCHED)
    matches0 = matches0.masked_fill(~valid0, IGNORE)
    matches1 = matches1.masked_fill(~valid1, IGNORE)
    return {"matches0": matches0, "matches1": matches1, "distance": distance}


def _outside(points: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """[B, K] whether pixel points [B, K, 2] fall outside images of size [B, 2] (W, H)."""
    size = size.to(points)[:, None]  # [B, 1, 2]
    return ((points < -0.5) | (points > size - 0.5)).any(-1)


__all__ = ["IGNORE", "UNMATCHED", "matches_from_homography"]
