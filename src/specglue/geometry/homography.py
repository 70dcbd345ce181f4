"""Planar homographies: warping points and images, sampling, errors and ground-truth matches.

Conventions (shared with the rest of specglue):

- ``H`` (or ``H_0to1``) is a ``[3 x 3]`` matrix that maps pixel coordinates of image 0 to
  image 1, acting on homogeneous column vectors: ``x1 ~ H @ [x0, y0, 1]^T``.
- Keypoints are ``[N x 2]`` arrays of ``(x, y)`` pixel coordinates, with the centre of the
  top-left pixel at ``(0, 0)`` (OpenCV convention). ``kpts0 [M x 2]`` live in image 0 and
  ``kpts1 [N x 2]`` in image 1.
- ``matches0[i] = j`` means keypoint ``i`` of image 0 matches keypoint ``j`` of image 1;
  ``-1`` means unmatched, ``-2`` means ignored (ambiguous, neither positive nor negative).
- Sizes are given as ``(width, height)`` like OpenCV's ``dsize``.

Every function accepts numpy arrays or torch tensors and returns the same kind it was given
(torch if any array argument is a tensor), except :func:`sample_homography` and
:func:`corner_error`, which return numpy / a Python float. Why not kornia's ``warp_perspective``
and ``transform_points``: the evaluation (numpy, OpenCV's estimators) and training (torch
batches) share these functions, and every image warp goes through ``cv2.warpPerspective`` so that
the synthetic benchmarks and training warp alike; moving to kornia would change their inputs.
"""

from __future__ import annotations

import logging
import math
from typing import Dict, Optional, Tuple, Union

import cv2
import numpy as np
import torch

logger = logging.getLogger(__name__)

ArrayLike = Union[np.ndarray, torch.Tensor]

#: Homogeneous coordinates with ``|w|`` below this are treated as points at infinity and
#: clamped (keeping their sign), so warping never divides by zero or produces NaN.
EPS_HOMOGENEOUS = 1e-8

#: Default ranges of :func:`sample_homography`; one comment per key.
DEFAULT_HOMOGRAPHY_SAMPLING = {
    "max_angle_deg": 25.0,  # in-plane rotation drawn uniformly in [-a, a] degrees; 0 disables
    "scale_range": (0.8, 1.25),  # isotropic scale drawn log-uniformly in [lo, hi]; (1, 1) disables
    "perspective": 0.2,  # projective terms drawn in [-p, p] (units of 1 / half the longer side)
    "translation": 0.1,  # shift drawn in [-t, t] as a fraction of width / height; 0 disables
    "min_overlap": 0.7,  # accept only if frame ∩ warped >= this fraction of both areas
    "max_tries": 100,  # resampling attempts before shrinking the ranges
}


# ----------------------------------------------------------------------------------------
# Small conversion / validation helpers (shared with estimators.py)
# ----------------------------------------------------------------------------------------


def _is_torch(*xs: object) -> bool:
    return any(isinstance(x, torch.Tensor) for x in xs)


def _to_numpy(x: ArrayLike, name: str, dtype: np.dtype = np.float64) -> np.ndarray:
    """Convert a numpy array, torch tensor or nested sequence to a numpy array of ``dtype``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be convertible to a {np.dtype(dtype).name} array: {err}")


def _check_points(x: ArrayLike, name: str) -> np.ndarray:
    """Validate ``x`` as finite ``[N x 2]`` points and return it as float64 numpy."""
    arr = _to_numpy(x, name)
    if arr.size == 0:  # no keypoints is normal input, e.g. [] or [0, 2]
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape [N, 2], got {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return arr


def _check_homography(H: ArrayLike, name: str = "H") -> np.ndarray:
    arr = _to_numpy(H, name)
    if arr.shape != (3, 3):
        raise ValueError(f"{name} must have shape [3, 3], got {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return arr


def _safe_divide_homogeneous(xyw: ArrayLike) -> ArrayLike:
    """``[..., 3]`` homogeneous -> ``[..., 2]`` Euclidean, clamping ``|w| < eps`` with its sign."""
    xy, w = xyw[..., :2], xyw[..., 2:3]
    if isinstance(xyw, torch.Tensor):
        sign = torch.where(w < 0, -torch.ones_like(w), torch.ones_like(w))
        w = torch.where(w.abs() < EPS_HOMOGENEOUS, sign * EPS_HOMOGENEOUS, w)
    else:
        sign = np.where(w < 0, -1.0, 1.0)
        w = np.where(np.abs(w) < EPS_HOMOGENEOUS, sign * EPS_HOMOGENEOUS, w)
    return xy / w


# ----------------------------------------------------------------------------------------
# Warping
# ----------------------------------------------------------------------------------------


def warp_points(points: ArrayLike, H: ArrayLike) -> ArrayLike:
    """Apply a homography to 2D points.

    Args:
        points: ``[..., N, 2]`` pixel coordinates ``(x, y)``.
        H: ``[..., 3, 3]`` homographies; leading dimensions broadcast against ``points``.

    Returns:
        ``[..., N, 2]`` warped points, torch if either input is a tensor (dtype/device of
        ``points`` when it is floating point), else float64 numpy. Points that map to (or
        near) infinity get ``|w|`` clamped to ``EPS_HOMOGENEOUS`` (sign kept), so the result
        is large but finite instead of inf/NaN.
    """
    if not isinstance(points, (np.ndarray, torch.Tensor)):
        points = np.asarray(points, dtype=np.float64)
    if not isinstance(H, (np.ndarray, torch.Tensor)):
        H = np.asarray(H, dtype=np.float64)
    if points.shape[-1] != 2:
        raise ValueError(f"points must have shape [..., N, 2], got {tuple(points.shape)}")
    if tuple(H.shape[-2:]) != (3, 3):
        raise ValueError(f"H must have shape [..., 3, 3], got {tuple(H.shape)}")
    if _is_torch(points, H):
        ref = points if isinstance(points, torch.Tensor) else H
        dtype = ref.dtype if ref.is_floating_point() else torch.float32
        pts = torch.as_tensor(points, dtype=dtype, device=ref.device)
        Ht = torch.as_tensor(H, dtype=dtype, device=ref.device)
        pts_h = torch.cat([pts, torch.ones_like(pts[..., :1])], dim=-1)
        return _safe_divide_homogeneous(pts_h @ Ht.transpose(-1, -2))
    pts = np.asarray(points, dtype=np.float64)
    Hn = np.asarray(H, dtype=np.float64)
    pts_h = np.concatenate([pts, np.ones_like(pts[..., :1])], axis=-1)
    return _safe_divide_homogeneous(pts_h @ np.swapaxes(Hn, -1, -2))


def warp_image(
    image: ArrayLike,
    H: ArrayLike,
    out_size: Optional[Tuple[int, int]] = None,
    *,
    interpolation: int = cv2.INTER_LINEAR,
    border_value: float = 0.0,
) -> ArrayLike:
    """Warp an image with a homography (``cv2.warpPerspective``), ``out[H @ x] = image[x]``.

    Args:
        image: numpy ``[H, W]`` or ``[H, W, C]`` (uint8, uint16, float32/64, bool), or torch
            ``[C, H, W]`` / ``[B, C, H, W]`` (any real dtype; bool masks are supported).
        H: ``[3, 3]`` homography from input to output pixel coordinates, or ``[B, 3, 3]`` for
            a batched torch image.
        out_size: ``(width, height)`` of the output; ``None`` keeps the input size.
        interpolation: OpenCV interpolation flag (bool images always use nearest).
        border_value: value written where the warped image has no source pixel.

    Returns:
        The warped image with the input's layout, dtype (and device for torch).
    """
    if _is_torch(image):
        return _warp_image_torch(image, H, out_size, interpolation, border_value)
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"image must have shape [H, W] or [H, W, C], got {img.shape}")
    Hn = _check_homography(H)
    if out_size is None:
        out_size = (img.shape[1], img.shape[0])
    return _warp_numpy(img, Hn, (int(out_size[0]), int(out_size[1])), interpolation, border_value)


def _warp_numpy(
    img: np.ndarray, H: np.ndarray, size: Tuple[int, int], interpolation: int, border: float
) -> np.ndarray:
    """Warp ``[H, W]`` or ``[H, W, C]`` numpy, in chunks of <= 4 channels (OpenCV's limit)."""
    is_bool = img.dtype == bool
    dtype = img.dtype
    work = img.astype(np.uint8) if is_bool else img
    if work.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        work = work.astype(np.float32)
    flags = (cv2.INTER_NEAREST if is_bool else interpolation)
    kwargs = dict(flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=float(border))
    if work.ndim == 2 or work.shape[2] <= 4:
        out = cv2.warpPerspective(work, H, size, **kwargs)
        if work.ndim == 3 and out.ndim == 2:  # OpenCV drops a singleton channel axis
            out = out[..., None]
    else:
        chunks = [
            cv2.warpPerspective(np.ascontiguousarray(work[..., c : c + 4]), H, size, **kwargs)
            for c in range(0, work.shape[2], 4)
        ]
        out = np.concatenate([c if c.ndim == 3 else c[..., None] for c in chunks], axis=-1)
    return out.astype(bool) if is_bool else out.astype(dtype, copy=False)


def _warp_image_torch(
    image: torch.Tensor,
    H: ArrayLike,
    out_size: Optional[Tuple[int, int]],
    interpolation: int,
    border: float,
) -> torch.Tensor:
    if image.ndim not in (3, 4):
        raise ValueError(f"image must have shape [C, H, W] or [B, C, H, W], got {tuple(image.shape)}")
    batched = image.ndim == 4
    imgs = image if batched else image[None]
    Hs = _to_numpy(H, "H")
    if Hs.shape == (3, 3):
        Hs = np.broadcast_to(Hs, (imgs.shape[0], 3, 3))
    if Hs.shape != (imgs.shape[0], 3, 3):
        raise ValueError(f"H must have shape [3, 3] or [B, 3, 3] with B={imgs.shape[0]}, got {Hs.shape}")
    if out_size is None:
        out_size = (imgs.shape[-1], imgs.shape[-2])
    size = (int(out_size[0]), int(out_size[1]))
    np_dtype = None
    if imgs.dtype == torch.bool:
        np_dtype = bool
    elif imgs.dtype in (torch.uint8,):
        np_dtype = np.uint8
    elif imgs.dtype == torch.float64:
        np_dtype = np.float64
    else:
        np_dtype = np.float32
    out = []
    for img, Hi in zip(imgs, Hs):
        arr = img.detach().cpu().numpy().transpose(1, 2, 0).astype(np_dtype, copy=False)
        warped = _warp_numpy(arr, _check_homography(Hi), size, interpolation, border)
        out.append(torch.from_numpy(np.ascontiguousarray(warped.transpose(2, 0, 1))))
    result = torch.stack(out).to(device=image.device, dtype=image.dtype)
    return result if batched else result[0]


# ----------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------


def _corners(width: float, height: float) -> np.ndarray:
    """``[4, 2]`` image corners in the HPatches / glue-factory convention (w, h inclusive)."""
    return np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def homography_overlap(H: ArrayLike, width: int, height: int) -> Tuple[float, float]:
    """Overlap between the frame and the image warped by ``H`` (same frame size).

    Returns:
        ``(frame_covered, warped_inside)``: the fraction of the output frame covered by the
        warped image and the fraction of the warped image lying inside the frame. Both are 0
        when the warped quadrilateral is not convex or is mirrored (degenerate homography).
    """
    Hn = _check_homography(H)
    frame = _corners(width, height)
    homog = np.c_[frame, np.ones(4)] @ Hn.T
    if np.any(homog[:, 2] <= EPS_HOMOGENEOUS):  # a corner crosses the line at infinity
        return 0.0, 0.0
    quad = homog[:, :2] / homog[:, 2:]
    area = _polygon_area(quad)
    edges = np.roll(quad, -1, axis=0) - quad  # [4, 2]
    nxt = np.roll(edges, -1, axis=0)
    cross = edges[:, 0] * nxt[:, 1] - edges[:, 1] * nxt[:, 0]  # z of consecutive edge pairs
    if area <= 0 or not all(c > 0 for c in cross):  # mirrored or folded
        return 0.0, 0.0
    inter, _ = cv2.intersectConvexConvex(frame.astype(np.float32), quad.astype(np.float32))
    return float(inter) / (width * height), float(inter) / area


def _random_homography(
    rng: np.random.Generator,
    width: int,
    height: int,
    max_angle_deg: float,
    scale_range: Tuple[float, float],
    perspective: float,
    translation: float,
) -> np.ndarray:
    cx, cy = width / 2.0, height / 2.0
    half = max(width, height) / 2.0
    angle = math.radians(rng.uniform(-max_angle_deg, max_angle_deg))
    scale = math.exp(rng.uniform(math.log(scale_range[0]), math.log(scale_range[1])))
    px, py = rng.uniform(-perspective, perspective, size=2) / half
    tx = rng.uniform(-translation, translation) * width
    ty = rng.uniform(-translation, translation) * height
    center = np.array([[1.0, 0, -cx], [0, 1.0, -cy], [0, 0, 1.0]])
    proj = np.array([[1.0, 0, 0], [0, 1.0, 0], [px, py, 1.0]])
    c, s = math.cos(angle), math.sin(angle)
    rot_scale = np.array([[scale * c, -scale * s, 0], [scale * s, scale * c, 0], [0, 0, 1.0]])
    back = np.array([[1.0, 0, cx + tx], [0, 1.0, cy + ty], [0, 0, 1.0]])
    H = back @ rot_scale @ proj @ center
    return H / H[2, 2]


def sample_homography(
    height: int,
    width: int,
    *,
    rng: Union[np.random.Generator, int, None] = None,
    max_angle_deg: float = DEFAULT_HOMOGRAPHY_SAMPLING["max_angle_deg"],
    scale_range: Tuple[float, float] = DEFAULT_HOMOGRAPHY_SAMPLING["scale_range"],
    perspective: float = DEFAULT_HOMOGRAPHY_SAMPLING["perspective"],
    translation: float = DEFAULT_HOMOGRAPHY_SAMPLING["translation"],
    min_overlap: float = DEFAULT_HOMOGRAPHY_SAMPLING["min_overlap"],
    max_tries: int = DEFAULT_HOMOGRAPHY_SAMPLING["max_tries"],
) -> np.ndarray:
    """Sample a random homography that keeps the warped image mostly inside the frame.

    The homography acts around the image centre: ``H = T(c + t) @ R(angle) S(scale) @ P @ T(-c)``
    where ``P = [[1, 0, 0], [0, 1, 0], [px, py, 1]]`` adds perspective. Defaults
    (``DEFAULT_HOMOGRAPHY_SAMPLING``):

    - ``max_angle_deg=25``: rotation uniform in ``[-25, 25]`` degrees,
    - ``scale_range=(0.8, 1.25)``: scale log-uniform in that range,
    - ``perspective=0.2``: ``px, py`` uniform in ``[-0.2, 0.2] / (max(W, H) / 2)``, i.e. the
      homogeneous weight changes by at most 20 % at the border along each axis,
    - ``translation=0.1``: shift uniform in ``[-0.1 W, 0.1 W] x [-0.1 H, 0.1 H]``.

    A sample is accepted when the warped image covers at least ``min_overlap`` of the frame
    *and* at least ``min_overlap`` of the warped image lies inside the frame (and it is
    neither mirrored nor folded). After ``max_tries`` rejections all ranges are halved and
    sampling continues, so the call always terminates (the identity is the limit).

    Args:
        height, width: image size in pixels.
        rng: a ``numpy.random.Generator``, an integer seed, or None (fresh entropy).
        min_overlap: in ``[0, 1]``; 0 disables the check.
        max_tries: attempts per range level, >= 1.

    Returns:
        ``[3, 3]`` float64 homography with ``H[2, 2] = 1``, mapping the original image to
        the warped one.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got ({height}, {width})")
    if scale_range[0] <= 0 or scale_range[1] < scale_range[0]:
        raise ValueError(f"scale_range must satisfy 0 < lo <= hi, got {scale_range}")
    if not 0.0 <= min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be in [0, 1], got {min_overlap}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    shrink = 1.0
    for level in range(20):
        log_lo, log_hi = math.log(scale_range[0]) * shrink, math.log(scale_range[1]) * shrink
        for _ in range(max_tries):
            H = _random_homography(
                rng,
                width,
                height,
                max_angle_deg * shrink,
                (math.exp(log_lo), math.exp(log_hi)),
                perspective * shrink,
                translation * shrink,
            )
            covered, inside = homography_overlap(H, width, height)
            if min(covered, inside) >= min_overlap:
                return H
        logger.debug("sample_homography: no sample accepted at level %d, halving ranges", level)
        shrink *= 0.5
    logger.warning("sample_homography: ranges too wide for min_overlap=%s; returning identity", min_overlap)
    return np.eye(3)


# ----------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------


def rot90_transform(width: int, height: int, k: int) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Pixel map of ``np.rot90(image, k)`` (``k`` counter-clockwise quarter turns) on a
    ``width x height`` image.

    Returns:
        ``(A [3, 3], (width', height'))`` with ``[x', y', 1] = A [x, y, 1]`` (pixel centres at
        integers) and the rotated size.
    """
    A = np.eye(3)
    w, h = int(width), int(height)
    for _ in range(int(k) % 4):
        # one counter-clockwise turn: column x becomes row (w - 1 - x), row y becomes column y
        step = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w - 1.0], [0.0, 0.0, 1.0]])
        A = step @ A
        w, h = h, w
    return A, (w, h)


def rotation_homography(width: int, height: int, angle_deg: float) -> Tuple[np.ndarray, Tuple[int, int]]:
    """In-plane rotation by ``angle_deg`` (counter-clockwise on screen) about the image centre,
    onto a canvas that holds the whole rotated image.

    Returns:
        ``(H [3, 3], (width', height'))``: the homography from input pixels to canvas pixels
        and the canvas size (the bounding box of the rotated frame).
    """
    a = np.deg2rad(float(angle_deg))
    c, s = np.cos(a), np.sin(a)
    R = np.array([[c, s], [-s, c]])  # y points down: this turns the picture counter-clockwise
    corners = (_corners(width, height) - [(width - 1) / 2, (height - 1) / 2]) @ R.T
    new_w = int(np.ceil(np.ptp(corners[:, 0]) - 1e-6))
    new_h = int(np.ceil(np.ptp(corners[:, 1]) - 1e-6))
    H = np.eye(3)
    H[:2, :2] = R
    H[:2, 2] = [(new_w - 1) / 2, (new_h - 1) / 2] - R @ [(width - 1) / 2, (height - 1) / 2]
    return H, (new_w, new_h)


def corner_error(
    H_est: Optional[ArrayLike], H_gt: ArrayLike, width: int, height: int
) -> float:
    """Mean distance between the 4 image corners warped by ``H_est`` and by ``H_gt``.

    This is the HPatches homography-accuracy protocol (as in SuperPoint / glue-factory),
    with corners ``(0, 0), (W, 0), (W, H), (0, H)``.

    Args:
        H_est: ``[3, 3]`` estimated homography, or None when estimation failed.
        H_gt: ``[3, 3]`` ground-truth homography (image 0 -> image 1).
        width, height: size of image 0.

    Returns:
        The mean corner distance in pixels; ``inf`` if ``H_est`` is None, has the wrong
        shape, contains non-finite values, or the error itself is not finite.
    """
    if H_est is None:
        return math.inf
    est = _to_numpy(H_est, "H_est")
    if est.shape != (3, 3) or not np.all(np.isfinite(est)):
        return math.inf
    gt = _check_homography(H_gt, "H_gt")
    corners = _corners(width, height)
    with np.errstate(all="ignore"):
        err = float(np.mean(np.linalg.norm(warp_points(corners, est) - warp_points(corners, gt), axis=-1)))
    return err if math.isfinite(err) else math.inf


def reprojection_error(kpts0: ArrayLike, kpts1: ArrayLike, H_0to1: ArrayLike) -> ArrayLike:
    """Symmetric reprojection error of putative correspondences under a homography.

    Args:
        kpts0: ``[N, 2]`` points in image 0.
        kpts1: ``[N, 2]`` corresponding points in image 1.
        H_0to1: ``[3, 3]`` homography from image 0 to image 1 (must be invertible).

    Returns:
        ``[N]`` errors in pixels, ``max(|H kpts0 - kpts1|, |H^-1 kpts1 - kpts0|)``.
    """
    if not _is_torch(kpts0, kpts1, H_0to1):
        kpts0, kpts1 = _check_points(kpts0, "kpts0"), _check_points(kpts1, "kpts1")
    if kpts0.shape[-1] != 2 or kpts1.shape != kpts0.shape:
        raise ValueError(
            f"kpts0 and kpts1 must both have shape [N, 2], got {tuple(kpts0.shape)} and {tuple(kpts1.shape)}"
        )
    if _is_torch(kpts0, kpts1, H_0to1):
        ref = next(x for x in (kpts0, kpts1, H_0to1) if isinstance(x, torch.Tensor))
        dtype = ref.dtype if ref.is_floating_point() else torch.float32
        k0 = torch.as_tensor(kpts0, dtype=dtype, device=ref.device)
        k1 = torch.as_tensor(kpts1, dtype=dtype, device=ref.device)
        H = torch.as_tensor(H_0to1, dtype=torch.float64, device=ref.device)
        H_inv = torch.linalg.inv(H).to(dtype)
        e0 = (warp_points(k0, H.to(dtype)) - k1).norm(dim=-1)
        e1 = (warp_points(k1, H_inv) - k0).norm(dim=-1)
        return torch.maximum(e0, e1)
    H = _check_homography(H_0to1, "H_0to1")
    k0, k1 = np.asarray(kpts0, np.float64), np.asarray(kpts1, np.float64)
    e0 = np.linalg.norm(warp_points(k0, H) - k1, axis=-1)
    e1 = np.linalg.norm(warp_points(k1, np.linalg.inv(H)) - k0, axis=-1)
    return np.maximum(e0, e1)


# ----------------------------------------------------------------------------------------
# Ground-truth matches
# ----------------------------------------------------------------------------------------


#: ground-truth label of a keypoint that has no match in the other image
UNMATCHED = -1
#: ground-truth label of a keypoint that losses and metrics leave out
IGNORE = -2


def gt_matches_pair_from_homography(
    kpts0: ArrayLike,
    kpts1: ArrayLike,
    H: ArrayLike,
    th_positive: float = 3.0,
    th_negative: float = 3.0,
) -> Tuple[ArrayLike, ArrayLike]:
    """Ground-truth assignment of one pair: :func:`gt_matches_batch_from_homography` on
    ``kpts0 [M, 2]``, ``kpts1 [N, 2]`` and ``H [3, 3]`` (no image sizes, no highlights).

    Returns:
        ``(matches0 [M], matches1 [N])`` int64 (torch if any input is a tensor): index, ``-1``
        unmatched, ``-2`` ignored. Empty keypoint sets are fine: with ``N = 0`` every
        ``matches0`` entry is -1.
    """
    use_torch = _is_torch(kpts0, kpts1, H)
    ref = next((x for x in (kpts0, kpts1, H) if isinstance(x, torch.Tensor)), None)
    k0 = torch.from_numpy(_check_points(kpts0, "kpts0"))
    k1 = torch.from_numpy(_check_points(kpts1, "kpts1"))
    Hn = torch.from_numpy(_check_homography(H))
    gt = gt_matches_batch_from_homography(k0[None], k1[None], Hn[None], positive_px=th_positive,
                                          negative_px=th_negative)
    m0, m1 = gt["matches0"][0], gt["matches1"][0]
    if use_torch:
        return m0.to(ref.device), m1.to(ref.device)
    return m0.numpy(), m1.numpy()


def gt_matches_from_homography(
    kpts0: ArrayLike,
    kpts1: ArrayLike,
    H: ArrayLike,
    th_positive: float = 3.0,
    th_negative: float = 3.0,
) -> ArrayLike:
    """``matches0 [M]`` of :func:`gt_matches_pair_from_homography`."""
    return gt_matches_pair_from_homography(kpts0, kpts1, H, th_positive, th_negative)[0]


def _outside(projected: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """[B, K] True where pixel positions [B, K, 2] fall outside images of size [B, 2] (W, H)."""
    return ((projected < -0.5) | (projected > size.to(projected)[:, None] - 0.5)).any(-1)


def labels_from_distance(
    distance: torch.Tensor,
    valid0: Optional[torch.Tensor] = None,
    valid1: Optional[torch.Tensor] = None,
    outside0: Optional[torch.Tensor] = None,
    outside1: Optional[torch.Tensor] = None,
    covered0: Optional[torch.Tensor] = None,
    covered1: Optional[torch.Tensor] = None,
    unknown0: Optional[torch.Tensor] = None,
    unknown1: Optional[torch.Tensor] = None,
    positive_px: float = 3.0,
    negative_px: float = 3.0,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ground-truth labels from a symmetric reprojection distance ``[B, M, N]`` (inf where a
    pair cannot match; padding and covered points are set to inf here): the rule of :func:`gt_matches_batch_from_homography`, shared with
    :func:`specglue.geometry.gt_matches_batch_from_depth`.

    ``outside`` marks points that project nowhere in the other image (outside it, or hidden
    there: unmatched), ``covered`` points under a highlight (unmatched), ``unknown`` points
    whose correspondence cannot be known (no depth: ignored), ``valid`` False on padding.

    Returns:
        ``(matches0 [B, M], matches1 [B, N], distance [B, M, N])``: int64 labels and the
        distance with padding and covered points at inf.
    """
    if positive_px > negative_px:
        raise ValueError(f"positive_px ({positive_px}) must not exceed negative_px ({negative_px})")
    b, m, n = distance.shape
    valid0 = torch.ones(b, m, dtype=torch.bool, device=distance.device) if valid0 is None else valid0
    valid1 = torch.ones(b, n, dtype=torch.bool, device=distance.device) if valid1 is None else valid1
    free0 = valid0 if covered0 is None else valid0 & ~covered0
    free1 = valid1 if covered1 is None else valid1 & ~covered1
    distance = distance.masked_fill(~(free0[:, :, None] & free1[:, None, :]), float("inf"))
    nearest0 = nearest1 = None
    if m and n:
        nearest0, nearest1 = distance.min(2), distance.min(1)  # for each i the closest j, and back
    matches = []
    for nearest, other, count, outside, valid, covered, unknown in (
            (nearest0, nearest1, m, outside0, valid0, covered0, unknown0),
            (nearest1, nearest0, n, outside1, valid1, covered1, unknown1)):
        label = torch.full((b, count), UNMATCHED, dtype=torch.int64, device=distance.device)
        if nearest is not None:
            mutual = other.indices.gather(1, nearest.indices) == torch.arange(count, device=distance.device)[None]
            label[nearest.values <= negative_px] = IGNORE
            if outside is not None:
                label[outside] = UNMATCHED
            label = torch.where(mutual & (nearest.values < positive_px), nearest.indices, label)
        if unknown is not None:
            label = label.masked_fill(unknown & (label < 0), IGNORE)
        if covered is not None:
            label = label.masked_fill(covered, UNMATCHED)
        matches.append(label.masked_fill(~valid, IGNORE))
    return matches[0], matches[1], distance


def gt_matches_batch_from_homography(
    keypoints0: torch.Tensor,
    keypoints1: torch.Tensor,
    H_0to1: torch.Tensor,
    size0: Optional[torch.Tensor] = None,
    size1: Optional[torch.Tensor] = None,
    valid0: Optional[torch.Tensor] = None,
    valid1: Optional[torch.Tensor] = None,
    covered0: Optional[torch.Tensor] = None,
    covered1: Optional[torch.Tensor] = None,
    positive_px: float = 3.0,
    negative_px: float = 3.0,
) -> Dict[str, torch.Tensor]:
    """Ground-truth matches of batches of keypoint sets related by homographies (glue-factory).

    The distance of keypoints ``i`` (image 0) and ``j`` (image 1) is symmetric: the larger of
    ``|H x_i - y_j|`` and ``|x_i - H^-1 y_j|``. Labels, per keypoint of each image:

    - a match ``j >= 0``: mutual nearest neighbours under that distance, closer than
      ``positive_px``;
    - :data:`UNMATCHED`: no keypoint of the other image within ``negative_px``; with the
      sizes, also a point projecting outside the other image; with ``covered``, a point under
      a highlight (it hides the surface: such points are never positives on either side);
    - :data:`IGNORE`: the rest (near a keypoint, but no clean mutual match), and padding.

    glue-factory uses 3 / 3 px for homographies (no ignore band), 3 / 5 px for MegaDepth.

    Args:
        keypoints0: [B, M, 2] and keypoints1: [B, N, 2] pixel (x, y).
        H_0to1: [B, 3, 3] maps image-0 pixels to image-1 pixels.
        size0, size1: optional [B, 2] (W, H) of each image.
        valid0, valid1: optional [B, M], [B, N] bool, False on padding.
        covered0, covered1: optional [B, M], [B, N] bool, True under a highlight.

    Returns:
        ``matches0`` [B, M], ``matches1`` [B, N] (int64) and ``distance`` [B, M, N] (float64;
        inf where a point is padding or covered).
    """
    k0, k1 = keypoints0.to(torch.float64), keypoints1.to(torch.float64)
    H = H_0to1.to(device=keypoints0.device, dtype=torch.float64)
    projected0 = warp_points(k0, H)  # [B, M, 2] in image 1
    projected1 = warp_points(k1, torch.linalg.inv(H))  # [B, N, 2] in image 0
    exact = "donot_use_mm_for_euclid_dist"
    distance = torch.maximum(torch.cdist(projected0, k1, compute_mode=exact),
                             torch.cdist(k0, projected1, compute_mode=exact))  # [B, M, N]
    outside0 = outside1 = None
    if size1 is not None:
        outside0 = _outside(projected0, size1)
    if size0 is not None:
        outside1 = _outside(projected1, size0)
    matches0, matches1, distance = labels_from_distance(distance, valid0, valid1, outside0, outside1, covered0,
                                                        covered1, positive_px=positive_px, negative_px=negative_px)
    return {"matches0": matches0, "matches1": matches1, "distance": distance}


__all__ = [
    "rot90_transform",
    "rotation_homography",
    "DEFAULT_HOMOGRAPHY_SAMPLING",
    "corner_error",
    "IGNORE",
    "UNMATCHED",
    "gt_matches_batch_from_homography",
    "gt_matches_from_homography",
    "gt_matches_pair_from_homography",
    "homography_overlap",
    "labels_from_distance",
    "reprojection_error",
    "sample_homography",
    "warp_image",
    "warp_points",
]
