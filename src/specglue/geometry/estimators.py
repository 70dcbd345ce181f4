"""Robust two-view geometry (OpenCV USAC / MAGSAC++), plain DLT, and pose / AUC metrics.

All estimators take putative correspondences ``kpts0 [N, 2]`` (image 0) and ``kpts1 [N, 2]``
(image 1) in pixels, as numpy arrays or torch tensors, and return a :class:`GeometryResult`
whose ``model`` maps image 0 to image 1:

- homography ``H``: ``x1 ~ H x0``;
- fundamental ``F``: ``x1^T F x0 = 0``;
- essential ``E``: ``y1^T E y0 = 0`` with ``y = K^-1 x``; ``R, t`` satisfy ``X1 = R X0 + t``
  (camera 0 to camera 1, ``t`` of unit norm).

Too few correspondences is normal input: the result then has ``model=None`` and all-False
inliers. Robust estimation uses ``cv2.USAC_MAGSAC`` (MAGSAC++), whose threshold is an
upper bound on the inlier noise rather than a hard cut.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .homography import ArrayLike, _check_points, _to_numpy

logger = logging.getLogger(__name__)

#: Minimal number of correspondences for each model.
MIN_POINTS: Dict[str, int] = {"homography": 4, "fundamental": 8, "essential": 5}


@dataclass
class GeometryResult:
    """Result of a two-view geometry estimation.

    Attributes:
        model: ``[3, 3]`` float64 H, F or E (image 0 -> image 1), or None on failure.
        inliers: ``[N]`` bool mask over the input correspondences.
        kind: ``"homography"``, ``"fundamental"``, ``"essential"`` or ``"homography_dlt"``.
        R: ``[3, 3]`` relative rotation (essential only, else None).
        t: ``[3]`` unit relative translation (essential only, else None).
    """

    model: Optional[np.ndarray]
    inliers: np.ndarray
    kind: str
    R: Optional[np.ndarray] = None
    t: Optional[np.ndarray] = None

    @property
    def num_inliers(self) -> int:
        """Number of inlier correspondences."""
        return int(np.count_nonzero(self.inliers))

    @property
    def inlier_ratio(self) -> float:
        """Inliers over input correspondences; 0.0 when there were none."""
        n = len(self.inliers)
        return self.num_inliers / n if n else 0.0

    @property
    def success(self) -> bool:
        """Whether a model was estimated."""
        return self.model is not None


def _failed(kind: str, n: int) -> GeometryResult:
    return GeometryResult(model=None, inliers=np.zeros(n, dtype=bool), kind=kind)


def _check_pair(kpts0: ArrayLike, kpts1: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """Validate two ``[N, 2]`` finite point sets with equal N; return float64 numpy."""
    k0 = _check_points(kpts0, "kpts0")
    k1 = _check_points(kpts1, "kpts1")
    if len(k0) != len(k1):
        raise ValueError(
            f"kpts0 and kpts1 must have the same number of points, got {len(k0)} and {len(k1)}"
        )
    return k0, k1


def _check_positive(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_ransac_args(threshold_px: float, confidence: float, max_iters: int) -> None:
    _check_positive(threshold_px, "threshold_px")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(max_iters) < 1:
        raise ValueError(f"max_iters must be >= 1, got {max_iters!r}")


def _check_intrinsics(K: ArrayLike, name: str) -> np.ndarray:
    arr = _to_numpy(K, name)
    if arr.shape != (3, 3):
        raise ValueError(f"{name} must have shape [3, 3], got {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)) or arr[0, 0] <= 0 or arr[1, 1] <= 0:
        raise ValueError(f"{name} must be finite with positive focal lengths, got {arr.tolist()}")
    return arr


def _mask(mask: Optional[np.ndarray], n: int) -> np.ndarray:
    if mask is None:
        return np.zeros(n, dtype=bool)
    return np.asarray(mask).reshape(-1).astype(bool)


def estimate_homography(
    kpts0: ArrayLike,
    kpts1: ArrayLike,
    threshold_px: float = 3.0,
    confidence: float = 0.9999,
    max_iters: int = 10000,
) -> GeometryResult:
    """Robust homography with MAGSAC++ (``cv2.findHomography(..., cv2.USAC_MAGSAC)``).

    Args:
        kpts0: ``[N, 2]`` points in image 0.
        kpts1: ``[N, 2]`` matching points in image 1.
        threshold_px: maximum reprojection error (pixels) of an inlier.
        confidence: RANSAC confidence in (0, 1).
        max_iters: maximum number of iterations.

    Returns:
        :class:`GeometryResult` with ``model = H [3, 3]`` (``H[2, 2] = 1``) or None when
        ``N < 4`` or estimation failed.
    """
    return _usac_3x3("homography", cv2.findHomography, kpts0, kpts1, threshold_px, confidence, max_iters)


def estimate_fundamental(
    kpts0: ArrayLike,
    kpts1: ArrayLike,
    threshold_px: float = 1.0,
    confidence: float = 0.9999,
    max_iters: int = 10000,
) -> GeometryResult:
    """Robust fundamental matrix with MAGSAC++ (``cv2.findFundamentalMat``); the arguments are
    :func:`estimate_homography`'s, ``threshold_px`` being the largest epipolar (Sampson) distance
    of an inlier.

    Returns:
        :class:`GeometryResult` with ``model = F [3, 3]`` (``x1^T F x0 = 0``) or None when
        ``N < 8`` or estimation failed.
    """
    return _usac_3x3("fundamental", cv2.findFundamentalMat, kpts0, kpts1, threshold_px, confidence, max_iters)


def _usac_3x3(kind: str, solver: Callable[..., Any], kpts0: ArrayLike, kpts1: ArrayLike,
              threshold_px: float, confidence: float, max_iters: int) -> GeometryResult:
    """Run an OpenCV USAC MAGSAC++ solver that returns one 3x3 model and an inlier mask."""
    k0, k1 = _check_pair(kpts0, kpts1)
    _check_ransac_args(threshold_px, confidence, max_iters)
    n = len(k0)
    if n < MIN_POINTS[kind]:
        return _failed(kind, n)
    try:
        model, mask = solver(
            k0,
            k1,
            method=cv2.USAC_MAGSAC,
            ransacReprojThreshold=float(threshold_px),
            confidence=float(confidence),
            maxIters=int(max_iters),
        )
    except cv2.error as err:
        logger.debug("%s estimation failed: %s", kind, err)
        return _failed(kind, n)
    if model is None or model.shape != (3, 3) or not np.all(np.isfinite(model)):
        return _failed(kind, n)
    return GeometryResult(model=model.astype(np.float64), inliers=_mask(mask, n), kind=kind)


def estimate_essential(
    kpts0: ArrayLike,
    kpts1: ArrayLike,
    K0: ArrayLike,
    K1: ArrayLike,
    threshold_px: float = 1.0,
    confidence: float = 0.9999,
    max_iters: int = 10000,
) -> GeometryResult:
    """Robust essential matrix with MAGSAC++ and relative pose via ``cv2.recoverPose``.

    Points are normalised with their intrinsics (``y = K^-1 x``); the pixel threshold is
    divided by the mean focal length of both cameras (as in SuperGlue / LightGlue).

    Args:
        kpts0: ``[N, 2]`` pixel points in image 0.
        kpts1: ``[N, 2]`` matching pixel points in image 1.
        K0, K1: ``[3, 3]`` intrinsics of cameras 0 and 1.
        threshold_px: inlier threshold in pixels.
        confidence: RANSAC confidence in (0, 1).
        max_iters: maximum number of iterations.

    Returns:
        :class:`GeometryResult` with ``model = E [3, 3]``, ``R [3, 3]`` and ``t [3]``
        (``X1 = R X0 + t``, ``|t| = 1``), and the RANSAC inliers; model None when ``N < 5``
        or estimation failed.
    """
    k0, k1 = _check_pair(kpts0, kpts1)
    K0n, K1n = _check_intrinsics(K0, "K0"), _check_intrinsics(K1, "K1")
    _check_ransac_args(threshold_px, confidence, max_iters)
    n = len(k0)
    if n < MIN_POINTS["essential"]:
        return _failed("essential", n)
    n0 = (k0 - K0n[[0, 1], [2, 2]]) / K0n[[0, 1], [0, 1]]
    n1 = (k1 - K1n[[0, 1], [2, 2]]) / K1n[[0, 1], [0, 1]]
    norm_thresh = threshold_px / float(np.mean([K0n[0, 0], K0n[1, 1], K1n[0, 0], K1n[1, 1]]))
    try:
        E, mask = cv2.findEssentialMat(
            n0,
            n1,
            np.eye(3),
            method=cv2.USAC_MAGSAC,
            prob=float(confidence),
            threshold=norm_thresh,
            maxIters=int(max_iters),
        )
    except cv2.error as err:
        logger.debug("findEssentialMat failed: %s", err)
        return _failed("essential", n)
    if E is None or E.ndim != 2 or E.shape[1] != 3 or E.shape[0] % 3 or not np.all(np.isfinite(E)):
        return _failed("essential", n)
    inliers = _mask(mask, n)
    best: Optional[Tuple[int, np.ndarray, np.ndarray, np.ndarray]] = None
    for E_i in np.split(E, E.shape[0] // 3):  # the 5-point solver may return several
        n_good, R, t, _ = cv2.recoverPose(E_i, n0, n1, np.eye(3), mask=inliers.astype(np.uint8).copy())
        if best is None or n_good > best[0]:
            best = (n_good, E_i, R, t)
    _, E_best, R, t = best
    return GeometryResult(
        model=E_best.astype(np.float64),
        inliers=inliers,
        kind="essential",
        R=R.astype(np.float64),
        t=t.reshape(3).astype(np.float64),
    )


#: Explicit name -> estimator table used by :func:`estimate`.
ESTIMATORS: Dict[str, Callable[..., GeometryResult]] = {
    "homography": estimate_homography,
    "fundamental": estimate_fundamental,
    "essential": estimate_essential,
}


def estimate(kind: str, *args, **kwargs) -> GeometryResult:
    """Dispatch to the estimator named ``kind`` (see ``ESTIMATORS``) with the other arguments.

    Raises:
        ValueError: if ``kind`` is not one of ``ESTIMATORS``.
    """
    try:
        fn = ESTIMATORS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown estimator {kind!r}; expected one of {sorted(ESTIMATORS)}") from None
    return fn(*args, **kwargs)


def _normalisation(points: np.ndarray) -> np.ndarray:
    """Hartley normalisation ``T [3, 3]``: centroid to origin, mean distance sqrt(2)."""
    centroid = points.mean(0)
    mean_dist = np.linalg.norm(points - centroid, axis=1).mean()
    s = math.sqrt(2) / mean_dist if mean_dist > 0 else 1.0
    return np.array([[s, 0, -s * centroid[0]], [0, s, -s * centroid[1]], [0, 0, 1.0]])


def dlt_homography(
    kpts0: ArrayLike, kpts1: ArrayLike, weights: Optional[ArrayLike] = None
) -> Optional[np.ndarray]:
    """Least-squares homography from all correspondences (normalised DLT, no RANSAC).

    Args:
        kpts0: ``[N, 2]`` points in image 0.
        kpts1: ``[N, 2]`` matching points in image 1.
        weights: optional ``[N]`` non-negative weights (e.g. match scores) for a weighted DLT.

    Returns:
        ``[3, 3]`` float64 H with ``H[2, 2] = 1`` (image 0 -> image 1), or None when fewer
        than 4 (non-zero weight) correspondences are given or the system is degenerate.
    """
    k0, k1 = _check_pair(kpts0, kpts1)
    n = len(k0)
    if weights is None:
        w = np.ones(n)
    else:
        w = _to_numpy(weights, "weights").reshape(-1)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights must be [N={n}] finite and non-negative, got shape {w.shape}")
    keep = w > 0
    if keep.sum() < MIN_POINTS["homography"]:
        return None
    k0, k1, w = k0[keep], k1[keep], w[keep]
    T0, T1 = _normalisation(k0), _normalisation(k1)
    p0 = k0 * T0[0, 0] + T0[:2, 2]
    p1 = k1 * T1[0, 0] + T1[:2, 2]
    x, y = p0[:, 0], p0[:, 1]
    u, v = p1[:, 0], p1[:, 1]
    zeros, ones = np.zeros_like(x), np.ones_like(x)
    A = np.empty((2 * len(x), 9))
    A[0::2] = np.stack([-x, -y, -ones, zeros, zeros, zeros, u * x, u * y, u], axis=1)
    A[1::2] = np.stack([zeros, zeros, zeros, -x, -y, -ones, v * x, v * y, v], axis=1)
    A *= np.sqrt(np.repeat(w, 2))[:, None]
    try:
        _, sv, vt = np.linalg.svd(A)
    except np.linalg.LinAlgError:
        return None
    if len(sv) >= 8 and sv[7] <= 1e-12 * max(sv[0], 1e-300):  # rank < 8: not determined
        return None
    H = np.linalg.inv(T1) @ vt[-1].reshape(3, 3) @ T0
    if not np.all(np.isfinite(H)) or abs(H[2, 2]) < 1e-12:
        return None
    return H / H[2, 2]


# ----------------------------------------------------------------------------------------
# Pose metrics
# ----------------------------------------------------------------------------------------


def _angle_between_deg(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return math.inf
    cos = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return math.degrees(math.acos(cos))


def relative_pose_error(
    R_gt: ArrayLike,
    t_gt: ArrayLike,
    R: Optional[ArrayLike],
    t: Optional[ArrayLike],
    ignore_gt_t_thr: float = 0.0,
) -> Tuple[float, float]:
    """Angular errors of an estimated relative pose (SuperGlue / LightGlue protocol).

    Args:
        R_gt: ``[3, 3]`` ground-truth rotation (camera 0 -> camera 1).
        t_gt: ``[3]`` ground-truth translation (any scale).
        R: ``[3, 3]`` estimated rotation, or None on failure.
        t: ``[3]`` estimated translation (any scale, sign-ambiguous), or None.
        ignore_gt_t_thr: if ``|t_gt| <= ignore_gt_t_thr`` the translation direction is
            undefined and its error is reported as 0.

    Returns:
        ``(rot_err_deg, trans_angle_err_deg)``: the rotation angle of ``R^T R_gt`` and the
        angle between ``t`` and ``t_gt`` taking ``min(e, 180 - e)`` for the sign ambiguity;
        ``(inf, inf)`` when the estimate is missing or non-finite.
    """
    if R is None or t is None:
        return math.inf, math.inf
    Rg, tg = _to_numpy(R_gt, "R_gt"), _to_numpy(t_gt, "t_gt").reshape(-1)
    Re, te = _to_numpy(R, "R"), _to_numpy(t, "t").reshape(-1)
    if Rg.shape != (3, 3) or Re.shape != (3, 3) or tg.shape != (3,) or te.shape != (3,):
        raise ValueError(
            f"expected R_gt, R [3, 3] and t_gt, t [3]; got {Rg.shape}, {Re.shape}, {tg.shape}, {te.shape}"
        )
    if not (np.all(np.isfinite(Re)) and np.all(np.isfinite(te))):
        return math.inf, math.inf
    cos = np.clip((np.trace(Re.T @ Rg) - 1.0) / 2.0, -1.0, 1.0)
    rot_err = math.degrees(math.acos(float(cos)))
    if np.linalg.norm(tg) <= ignore_gt_t_thr:
        t_err = 0.0
    else:
        t_err = _angle_between_deg(te, tg)
        t_err = min(t_err, 180.0 - t_err)
    return rot_err, t_err


def error_auc(errors: Sequence[float], thresholds: Sequence[float] = (5, 10, 20)) -> List[float]:
    """Area under the cumulative error (recall) curve up to each threshold, normalised.

    The SuperGlue / LightGlue definition: sort the errors, take recall ``i / n`` at the
    ``i``-th error (piecewise linear, starting at (0, 0)), integrate it from 0 to ``t`` with
    the trapezoidal rule and divide by ``t``. Failures should be passed as ``inf``; NaN is
    treated as ``inf``. Use ``(5, 10, 20)`` degrees for pose and ``(1, 3, 5)`` px for the
    homography corner error.

    Args:
        errors: ``[P]`` per-pair errors.
        thresholds: positive thresholds, in the unit of ``errors``.

    Returns:
        One AUC in ``[0, 1]`` per threshold (all 0.0 for an empty ``errors``).
    """
    errs = _to_numpy(errors, "errors").reshape(-1)
    errs = np.where(np.isnan(errs), np.inf, errs)
    if np.any(errs < 0):
        raise ValueError("errors must be non-negative")
    for t in thresholds:
        _check_positive(float(t), "thresholds")
    if len(errs) == 0:
        return [0.0 for _ in thresholds]
    errs = np.sort(errs)
    recall = np.arange(1, len(errs) + 1) / len(errs)
    errs = np.r_[0.0, errs]
    recall = np.r_[0.0, recall]
    aucs = []
    for t in thresholds:
        last = int(np.searchsorted(errs, t))
        r = np.r_[recall[:last], recall[last - 1]]
        e = np.r_[errs[:last], t]
        area = float(np.sum((e[1:] - e[:-1]) * (r[1:] + r[:-1]) / 2.0))
        aucs.append(area / t)
    return aucs


#: Alias with the SuperGlue name; identical to :func:`error_auc`.
pose_auc = error_auc


__all__ = [
    "ESTIMATORS",
    "MIN_POINTS",
    "GeometryResult",
    "dlt_homography",
    "error_auc",
    "estimate",
    "estimate_essential",
    "estimate_fundamental",
    "estimate_homography",
    "pose_auc",
    "relative_pose_error",
]
