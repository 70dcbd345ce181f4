"""Per-pair metrics of the evaluation benchmarks and their aggregation.

Shape letters as in the rest of specglue: ``kpts0 [M, 2]``, ``kpts1 [N, 2]`` pixel ``(x, y)``
(centre of the top-left pixel at ``(0, 0)``), ``matches [S, 2]`` int index pairs ``(i, j)``
into ``kpts0`` / ``kpts1``, ``H_0to1 [3, 3]`` maps image 0 to image 1.

Definitions (the HPatches protocol of the LightGlue paper, glue-factory's ``eval.hpatches``):

- **precision@t**: share of the predicted matches whose symmetric reprojection error
  ``max(|H x0 - x1|, |H^-1 x1 - x0|)`` is below ``t`` px. ``nan`` when there is no match.
- **recall@t**: ground truth is the mutual-nearest-neighbour assignment of the *detected*
  keypoints under the homography with ``th_positive = th_negative = t``
  (:func:`specglue.geometry.gt_matches_from_homography`); recall is the share of these
  ground-truth pairs ``(i, j)`` that were predicted exactly. ``nan`` when there is none.
- **homography error**: mean distance of the 4 warped image corners
  (:func:`specglue.geometry.corner_error`), ``inf`` on failure, for MAGSAC++ (``ransac``) and
  for a plain DLT on all matches (``dlt``); summarised as AUC at 1/3/5 px.
- **pose error**: ``max(rotation error, translation-direction error)`` in degrees after
  essential-matrix MAGSAC++ and ``recoverPose``; summarised as AUC at 5/10/20 degrees.
- **label precision / recall** (training, glue-factory's): predicted matches against the
  training labels, counted over a batch (:func:`label_match_counts`) and pooled
  (:func:`label_precision_recall`): precision is the share of predicted matches on labelled
  points that equal their label, recall the share of labelled matches predicted. They are
  not the pixel-threshold precision@t / recall@t above.

Every function is pure (numbers in, numbers out) so that the scoring loop can be rerun from the
prediction cache without matching again.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch

from ..geometry import (
    corner_error,
    dlt_homography,
    error_auc,
    estimate_essential,
    estimate_homography,
    IGNORE,
    gt_matches_from_homography,
    relative_pose_error,
    reprojection_error,
)

#: thresholds (px) of the match precision / recall columns
MATCH_THRESHOLDS = (1.0, 3.0, 5.0)
#: thresholds (px) of the homography corner-error AUC
HOMOGRAPHY_AUC_THRESHOLDS = (1.0, 3.0, 5.0)
#: thresholds (degrees) of the relative-pose AUC
POSE_AUC_THRESHOLDS = (5.0, 10.0, 20.0)
#: finer thresholds (px) for the precision / recall curves of the plots
CURVE_THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.5, 10.01, 0.5), 2))


def _as_pairs(values: object, name: str, dtype: type, rows: str) -> np.ndarray:
    """``values`` as a ``[rows, 2]`` array (empty input: ``[0, 2]``)."""
    arr = np.asarray(values, dtype=dtype)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape [{rows}, 2], got {arr.shape}")
    return arr


def _as_matches(matches: object) -> np.ndarray:
    return _as_pairs(matches, "matches", np.int64, "S")


def _as_points(points: object, name: str) -> np.ndarray:
    return _as_pairs(points, name, np.float64, "N")


def match_errors(kpts0: object, kpts1: object, matches: object, H_0to1: object) -> np.ndarray:
    """``[S]`` symmetric reprojection errors (px) of the matched keypoints under ``H_0to1``."""
    k0, k1, m = _as_points(kpts0, "kpts0"), _as_points(kpts1, "kpts1"), _as_matches(matches)
    if len(m) == 0:
        return np.zeros(0)
    _check_indices(m, len(k0), len(k1))
    return np.asarray(reprojection_error(k0[m[:, 0]], k1[m[:, 1]], H_0to1), dtype=np.float64)


def _check_indices(m: np.ndarray, n0: int, n1: int) -> None:
    if len(m) and (m.min() < 0 or m[:, 0].max() >= n0 or m[:, 1].max() >= n1):
        raise ValueError(
            f"matches index outside the keypoints: need 0 <= i < {n0} and 0 <= j < {n1}, "
            f"got i in [{m[:, 0].min()}, {m[:, 0].max()}] and j in [{m[:, 1].min()}, {m[:, 1].max()}]"
        )


def match_precision(errors: object, thresholds: Sequence[float] = MATCH_THRESHOLDS) -> List[float]:
    """Share of matches with error below each threshold; ``nan`` for an empty match set."""
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    if len(e) == 0:
        return [math.nan for _ in thresholds]
    return [float(np.mean(e < t)) for t in thresholds]


def gt_correspondences(kpts0: object, kpts1: object, H_0to1: object) -> np.ndarray:
    """Candidate ground truth ``[M]``: mutual nearest neighbour ``j`` of each keypoint ``i``
    under the symmetric reprojection distance (``-1`` if not mutual), and its distance.

    ``gt_matches_from_homography(..., th_positive=t, th_negative=t)`` equals
    ``where(dist < t, gt, -1)`` (up to its ``-2`` ignore label, irrelevant for recall), so the
    assignment is computed once per pair and thresholded for every ``t``.

    Returns:
        ``[M, 2]`` float array: column 0 the index ``j`` (``-1``), column 1 the distance
        (``inf`` where unmatched).
    """
    k0, k1 = _as_points(kpts0, "kpts0"), _as_points(kpts1, "kpts1")
    gt = np.asarray(
        gt_matches_from_homography(k0, k1, H_0to1, th_positive=math.inf, th_negative=math.inf),
        dtype=np.int64,
    )
    dist = np.full(len(k0), math.inf)
    pos = gt >= 0
    if pos.any():
        dist[pos] = np.asarray(reprojection_error(k0[pos], k1[gt[pos]], H_0to1), dtype=np.float64)
    return np.stack([gt.astype(np.float64), dist], axis=1).reshape(-1, 2)


def match_recall(
    kpts0: object,
    kpts1: object,
    matches: object,
    H_0to1: object,
    thresholds: Sequence[float] = MATCH_THRESHOLDS,
    gt: Optional[np.ndarray] = None,
) -> List[float]:
    """Share of the ground-truth correspondences among the detected keypoints that were found.

    For each threshold ``t`` the ground truth is
    ``gt_matches_from_homography(kpts0, kpts1, H_0to1, th_positive=t, th_negative=t)``; a
    ground-truth pair ``(i, j)`` counts as recalled when ``(i, j)`` is among ``matches``.

    Args:
        gt: optional precomputed :func:`gt_correspondences` of the pair (shared by methods).

    Returns:
        One recall per threshold; ``nan`` where the ground truth is empty.
    """
    k0, k1, m = _as_points(kpts0, "kpts0"), _as_points(kpts1, "kpts1"), _as_matches(matches)
    _check_indices(m, len(k0), len(k1))
    if gt is None:
        gt = gt_correspondences(k0, k1, H_0to1)
    gt_j, gt_d = gt[:, 0].astype(np.int64), gt[:, 1]
    pred0 = -np.ones(len(k0), dtype=np.int64)
    pred0[m[:, 0]] = m[:, 1]
    out = []
    for t in thresholds:
        positive = (gt_j >= 0) & (gt_d < t)
        if not positive.any():
            out.append(math.nan)
            continue
        out.append(float(np.mean(pred0[positive] == gt_j[positive])))
    return out


def homography_errors(
    kpts0: object,
    kpts1: object,
    matches: object,
    H_0to1: object,
    image_size0: Sequence[float],
    ransac_threshold: float = 3.0,
) -> Dict[str, float]:
    """Corner errors (px) of the homography estimated by MAGSAC++ and by a DLT on all matches.

    Args:
        image_size0: ``(W, H)`` of image 0, whose corners are warped.
        ransac_threshold: MAGSAC++ inlier threshold in px (fixed, never tuned on the test set).

    Returns:
        ``{"ransac": err, "dlt": err, "ransac_inliers": n}``, ``inf`` errors on failure.
    """
    k0, k1, m = _as_points(kpts0, "kpts0"), _as_points(kpts1, "kpts1"), _as_matches(matches)
    _check_indices(m, len(k0), len(k1))
    w, h = float(image_size0[0]), float(image_size0[1])
    p0, p1 = k0[m[:, 0]], k1[m[:, 1]]
    result = estimate_homography(p0, p1, threshold_px=ransac_threshold)
    H_dlt = dlt_homography(p0, p1)
    return {
        "ransac": corner_error(result.model, H_0to1, w, h),
        "dlt": corner_error(H_dlt, H_0to1, w, h),
        "ransac_inliers": result.num_inliers,
    }


def pose_error(
    kpts0: object,
    kpts1: object,
    matches: object,
    K0: object,
    K1: object,
    T_0to1: object,
    ransac_threshold: float = 1.0,
) -> Dict[str, float]:
    """Relative-pose error (degrees) after essential-matrix MAGSAC++ on the matches.

    Args:
        K0, K1: ``[3, 3]`` intrinsics of the keypoint pixel frames.
        T_0to1: ``[4, 4]`` ground-truth pose, ``X1 = R X0 + t``.
        ransac_threshold: inlier threshold in px (divided by the mean focal length).

    Returns:
        ``{"R": deg, "t": deg, "pose": max(R, t), "inliers": n}``; ``inf`` on failure.
    """
    k0, k1, m = _as_points(kpts0, "kpts0"), _as_points(kpts1, "kpts1"), _as_matches(matches)
    _check_indices(m, len(k0), len(k1))
    T = np.asarray(T_0to1, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"T_0to1 must have shape [4, 4], got {T.shape}")
    result = estimate_essential(k0[m[:, 0]], k1[m[:, 1]], K0, K1, threshold_px=ransac_threshold)
    err_R, err_t = relative_pose_error(T[:3, :3], T[:3, 3], result.R, result.t)
    return {"R": err_R, "t": err_t, "pose": max(err_R, err_t), "inliers": result.num_inliers}


def stop_histogram(stops: Iterable[int], n_layers: int) -> Optional[List[int]]:
    """Counts of pairs that stopped after 1..``n_layers`` layers (the method's depth); None if
    no pair has one (methods without layers report ``stop = -1``)."""
    values = [int(s) for s in stops if s is not None and int(s) > 0]
    if not values or n_layers < 1:
        return None
    hist = [0] * int(n_layers)
    for s in values:
        hist[min(s, n_layers) - 1] += 1
    return hist


def nanmean(values: Iterable[float]) -> float:
    """Mean of the finite (non-nan) values; nan if there are none."""
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if len(arr) else math.nan


def summarize_common(records: Sequence[Mapping[str, object]], n_layers: int) -> Dict[str, object]:
    """What every benchmark reports: pairs, mean matches and keypoints, time, share of matches
    on glare, and the stop-layer histogram over the method's ``n_layers``."""
    out: Dict[str, object] = {"num_pairs": len(records)}
    out["num_matches"] = nanmean(r["num_matches"] for r in records)
    out["num_keypoints"] = nanmean(0.5 * (r["num_keypoints0"] + r["num_keypoints1"]) for r in records)
    out["time_ms"] = nanmean(1000.0 * r["time_s"] for r in records)
    out["specular_match_share"] = nanmean(r.get("specular_match_share", math.nan) for r in records)
    out["stop_hist"] = stop_histogram((r["stop"] for r in records), n_layers)
    out["mean_stop"] = nanmean(r["stop"] for r in records if r["stop"] > 0) if out["stop_hist"] else math.nan
    return out


def summarize_homography(records: Sequence[Mapping[str, object]], n_layers: int) -> Dict[str, object]:
    """Aggregate per-pair homography records (see :mod:`specglue.eval.benchmarks.homography`).

    Returns:
        :func:`summarize_common` plus means of precision / recall at each threshold
        (``prec@3px`` ...), corner-error AUCs (``auc_ransac@1px`` ..., ``auc_dlt@1px`` ...)
        and the precision / recall curves over :data:`CURVE_THRESHOLDS`.
    """
    out = summarize_common(records, n_layers)
    for i, t in enumerate(MATCH_THRESHOLDS):
        out[f"prec@{t:g}px"] = nanmean(r["precision"][i] for r in records)
        out[f"recall@{t:g}px"] = nanmean(r["recall"][i] for r in records)
    for est in ("ransac", "dlt"):
        aucs = error_auc([r[f"H_error_{est}"] for r in records], HOMOGRAPHY_AUC_THRESHOLDS)
        for t, a in zip(HOMOGRAPHY_AUC_THRESHOLDS, aucs):
            out[f"auc_{est}@{t:g}px"] = a
    for curve in ("precision_curve", "recall_curve"):
        out[curve] = [nanmean(r[curve][i] for r in records) for i in range(len(CURVE_THRESHOLDS))]
    return out


def summarize_pose(records: Sequence[Mapping[str, object]], n_layers: int) -> Dict[str, object]:
    """:func:`summarize_common` plus pose AUC at 5/10/20 degrees and the inlier ratio."""
    out = summarize_common(records, n_layers)
    aucs = error_auc([r["pose_error"] for r in records], POSE_AUC_THRESHOLDS)
    for t, a in zip(POSE_AUC_THRESHOLDS, aucs):
        out[f"auc@{t:g}deg"] = a
    out["inlier_ratio"] = nanmean(
        r["inliers"] / r["num_matches"] if r["num_matches"] else math.nan for r in records
    )
    return out


def paired_bootstrap_auc(errors_a: Sequence[float], errors_b: Sequence[float], threshold: float,
                         resamples: int = 2000, seed: int = 0) -> Dict[str, float]:
    """How sure is a difference of pose AUC between two methods run on the same pairs?

    Resamples the pairs with replacement (the same draw for both methods) and gives the AUC
    difference ``b - a`` at ``threshold`` on all pairs (``difference``, AUC points x 100), its
    2.5 and 97.5 percentiles over ``resamples`` draws (``low``, ``high``), and on how many
    pairs ``b`` has the smaller error (``better``) or the larger (``worse``).

    Raises:
        ValueError: the two lists differ in length or are empty.
    """
    a, b = np.asarray(errors_a, dtype=np.float64), np.asarray(errors_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not a.size:
        raise ValueError(f"errors_a and errors_b must be two equally long non-empty lists, got {a.shape} and {b.shape}")
    a, b = np.where(np.isnan(a), np.inf, a), np.where(np.isnan(b), np.inf, b)  # failures
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, a.size, size=(resamples, a.size))  # [R, P]
    diffs = np.array([error_auc(b[d], [threshold])[0] - error_auc(a[d], [threshold])[0] for d in draws])
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"difference": 100 * (error_auc(b, [threshold])[0] - error_auc(a, [threshold])[0]),
            "low": 100 * low, "high": 100 * high, "better": int((b < a).sum()), "worse": int((b > a).sum())}


__all__ = [
    "CURVE_THRESHOLDS",
    "HOMOGRAPHY_AUC_THRESHOLDS",
    "MATCH_THRESHOLDS",
    "POSE_AUC_THRESHOLDS",
    "gt_correspondences",
    "homography_errors",
    "match_errors",
    "match_precision",
    "match_recall",
    "nanmean",
    "paired_bootstrap_auc",
    "pose_error",
    "stop_histogram",
    "summarize_common",
    "summarize_homography",
    "summarize_pose",
]


def label_match_counts(predicted: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
    """Counts of predicted matches against training labels.

    Args:
        predicted: ``[B, M]`` index into image 1 or -1 (the model's filtered matches).
        labels: ``[B, M]`` index, :data:`~specglue.geometry.UNMATCHED` or ignored
            (:data:`~specglue.geometry.IGNORE`).

    Returns:
        ``correct`` (predicted equal to a positive label), ``predicted`` (matches on points
        whose label is not ignored), ``positives`` (labelled matches), ``matches`` (all).
    """
    made = (predicted >= 0) & (labels != IGNORE)
    return {"correct": float(((predicted == labels) & (labels >= 0)).sum()), "predicted": float(made.sum()),
            "positives": float((labels >= 0).sum()), "matches": float((predicted >= 0).sum())}


def label_precision_recall(counts: Mapping[str, float]) -> Dict[str, float]:
    """``label_precision`` and ``label_recall`` of counts pooled over pairs
    (:func:`label_match_counts` summed)."""
    return {"label_precision": counts.get("correct", 0.0) / max(counts.get("predicted", 0.0), 1.0),
            "label_recall": counts.get("correct", 0.0) / max(counts.get("positives", 0.0), 1.0)}
