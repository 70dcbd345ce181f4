"""Ground truth for pairs with depth and poses (MegaDepth / ScanNet style), by reprojection.

A keypoint is lifted with its depth (nearest pixel of the depth map; 0 or non-finite means
unknown), moved into the other camera and projected. It is *visible* there when it lands inside
the image in front of the camera and the other depth map, where known, agrees with its depth
within ``depth_tolerance`` (relative); otherwise it is occluded or out of view and projects
nowhere.
Labels then follow :func:`specglue.geometry.labels_from_distance`, as for homographies, with
glue-factory's MegaDepth thresholds (3 px positive, 5 px negative): points without depth are
ignored unless the other image's projection finds them a match.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from .homography import labels_from_distance


def sample_depth(depth: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Depth at pixel positions (nearest pixel), 0 outside the map.

    Args:
        depth: [B, H, W]; points: [B, K, 2] pixel (x, y).

    Returns:
        [B, K] depth (0 where unknown or outside).
    """
    b, h, w = depth.shape
    xy = torch.round(points).long()  # [B, K, 2]
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
    flat = (xy[..., 1].clamp(0, h - 1) * w + xy[..., 0].clamp(0, w - 1))  # [B, K]
    values = depth.reshape(b, -1).gather(1, flat).to(torch.float64)
    good = inside & torch.isfinite(values) & (values > 0)
    return torch.where(good, values, torch.zeros_like(values))


def project_with_depth(points: torch.Tensor, depth_src: torch.Tensor, K_src: torch.Tensor, K_dst: torch.Tensor,
                       T_src_to_dst: torch.Tensor, depth_dst: torch.Tensor, depth_tolerance: float = 0.1
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keypoints of one view moved into the other through depth and the relative pose.

    Args:
        points: [B, K, 2] pixels of the source view; depth_src / depth_dst: [B, H, W] each view's
            depth; K_src / K_dst: [B, 3, 3]; T_src_to_dst: [B, 4, 4] maps source-camera to
            destination-camera coordinates.

    Returns:
        projected [B, K, 2] pixels in the destination (float64), known [B, K] (the source
        depth exists), visible [B, K] (known, in front, inside, and not contradicted by a known
        destination depth).
    """
    z = sample_depth(depth_src, points)  # [B, K]
    known = z > 0
    ones = torch.ones_like(points[..., :1], dtype=torch.float64)
    rays = torch.cat([points.to(torch.float64), ones], -1) @ torch.linalg.inv(K_src.to(torch.float64)).transpose(1, 2)
    xyz = rays * z[..., None]  # [B, K, 3] source camera
    T = T_src_to_dst.to(torch.float64)
    xyz_dst = xyz @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]
    z_dst = xyz_dst[..., 2]
    uvw = xyz_dst @ K_dst.to(torch.float64).transpose(1, 2)
    projected = uvw[..., :2] / uvw[..., 2:].clamp(min=1e-9)
    h, w = depth_dst.shape[-2:]
    inside = ((projected > -0.5) & (projected < torch.tensor([w, h], device=projected.device) - 0.5)).all(-1)
    observed = sample_depth(depth_dst, projected)
    # hidden when the other view's depth is known there and disagrees; unknown depth there is no proof
    agree = (observed <= 0) | ((z_dst - observed).abs() <= depth_tolerance * observed)
    visible = known & (z_dst > 1e-9) & inside & agree
    return projected, known, visible


def gt_matches_batch_from_depth(
    keypoints0: torch.Tensor,
    keypoints1: torch.Tensor,
    depth0: torch.Tensor,
    depth1: torch.Tensor,
    K0: torch.Tensor,
    K1: torch.Tensor,
    T_0to1: torch.Tensor,
    valid0: Optional[torch.Tensor] = None,
    valid1: Optional[torch.Tensor] = None,
    covered0: Optional[torch.Tensor] = None,
    covered1: Optional[torch.Tensor] = None,
    positive_px: float = 3.0,
    negative_px: float = 5.0,
    depth_tolerance: float = 0.1,
) -> Dict[str, torch.Tensor]:
    """Ground-truth matches of a batch of pairs with depth maps and a relative pose.

    The distance of ``i`` and ``j`` is the larger of the two reprojection errors where both
    points have depth, the one that exists where only one has, and inf where neither has or
    where a point is occluded / out of view in the other image.

    Args:
        keypoints0: [B, M, 2], keypoints1: [B, N, 2] pixels; depth0, depth1: [B, H, W];
        K0, K1: [B, 3, 3]; T_0to1: [B, 4, 4] camera 0 to camera 1 coordinates;
        valid*, covered*: as in :func:`specglue.geometry.gt_matches_batch_from_homography`.

    Returns:
        ``matches0`` [B, M], ``matches1`` [B, N] (int64: index, -1 unmatched, -2 ignored) and
        ``distance`` [B, M, N] (float64).
    """
    device = keypoints0.device
    T_1to0 = torch.linalg.inv(T_0to1.to(torch.float64))
    projected0, known0, visible0 = project_with_depth(keypoints0, depth0, K0, K1, T_0to1, depth1, depth_tolerance)
    projected1, known1, visible1 = project_with_depth(keypoints1, depth1, K1, K0, T_1to0, depth0, depth_tolerance)
    k0, k1 = keypoints0.to(torch.float64), keypoints1.to(torch.float64)
    exact = "donot_use_mm_for_euclid_dist"
    inf = torch.tensor(float("inf"), dtype=torch.float64, device=device)
    error0 = torch.where(visible0[:, :, None], torch.cdist(projected0, k1, compute_mode=exact), inf)  # [B, M, N]
    error1 = torch.where(visible1[:, None, :], torch.cdist(k0, projected1, compute_mode=exact), inf)
    distance = torch.where(torch.isinf(error0), error1,
                           torch.where(torch.isinf(error1), error0, torch.maximum(error0, error1)))
    # a point seen with depth but hidden / out of view in the other image matches nothing
    hidden0, hidden1 = known0 & ~visible0, known1 & ~visible1
    distance = distance.masked_fill(hidden0[:, :, None] | hidden1[:, None, :], float("inf"))
    matches0, matches1, distance = labels_from_distance(
        distance, valid0, valid1, hidden0, hidden1, covered0, covered1, unknown0=~known0, unknown1=~known1,
        positive_px=positive_px, negative_px=negative_px)
    return {"matches0": matches0, "matches1": matches1, "distance": distance}


__all__ = ["gt_matches_batch_from_depth", "project_with_depth", "sample_depth"]
