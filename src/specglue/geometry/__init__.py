"""Two-view geometry: homographies, robust estimators (MAGSAC++) and pose / AUC metrics.

Shape letters follow the rest of specglue: ``kpts0 [M, 2]`` / ``kpts1 [N, 2]`` pixel
coordinates ``(x, y)``, ``H [3, 3]`` maps image 0 to image 1, ``matches0 [M]`` holds indices
into ``kpts1`` with ``-1`` unmatched and ``-2`` ignored.
"""

from .estimators import (
    ESTIMATORS,
    MIN_POINTS,
    GeometryResult,
    dlt_homography,
    error_auc,
    estimate,
    estimate_essential,
    estimate_fundamental,
    estimate_homography,
    pose_auc,
    relative_pose_error,
)
from .depth import gt_matches_batch_from_depth, project_with_depth, sample_depth
from .homography import (
    DEFAULT_HOMOGRAPHY_SAMPLING,
    IGNORE,
    UNMATCHED,
    corner_error,
    gt_matches_batch_from_homography,
    gt_matches_from_homography,
    gt_matches_pair_from_homography,
    homography_overlap,
    labels_from_distance,
    reprojection_error,
    rot90_transform,
    rotation_homography,
    sample_homography,
    warp_image,
    warp_points,
)

__all__ = [
    "DEFAULT_HOMOGRAPHY_SAMPLING",
    "ESTIMATORS",
    "MIN_POINTS",
    "GeometryResult",
    "IGNORE",
    "UNMATCHED",
    "corner_error",
    "dlt_homography",
    "error_auc",
    "estimate",
    "estimate_essential",
    "estimate_fundamental",
    "estimate_homography",
    "gt_matches_batch_from_depth",
    "gt_matches_batch_from_homography",
    "gt_matches_from_homography",
    "gt_matches_pair_from_homography",
    "homography_overlap",
    "labels_from_distance",
    "project_with_depth",
    "pose_auc",
    "relative_pose_error",
    "reprojection_error",
    "rot90_transform",
    "rotation_homography",
    "sample_depth",
    "sample_homography",
    "warp_image",
    "warp_points",
]
