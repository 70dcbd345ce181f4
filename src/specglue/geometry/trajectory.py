"""Trajectory accuracy: a reconstruction's camera poses against known poses of the same images.

Structure from motion fixes the world only up to a similarity (rotation, translation and
scale), so the estimate is first aligned to the reference by the least-squares similarity of
the camera centres (Umeyama 1991, :func:`align_similarity`); everything below is measured in
the reference's frame after that alignment:

- ``registered``: the fraction of the reference's images that have an estimated pose;
- ``ate_rmse`` (absolute trajectory error): the RMS distance between aligned and reference
  centres, and ``ate_relative``: that over the length of the reference path (the sum of the
  distances between consecutive reference centres, in name order). A scale-free number: the
  reference may be in millimetres or in arbitrary units;
- ``rotation_error_deg``: per image, the angle between estimated and reference orientations
  after the rotation that best aligns all orientations (:func:`align_rotations`), not the
  similarity's: the centres of a short, nearly planar path (an endoscope's) leave the
  similarity's tilt loosely determined (11.5 degrees off on the sinus sequence, whose
  orientations agree to 0.3 degrees once aligned by themselves);
- the relative pose errors (RPE) between consecutive registered images: the angle of the
  rotation error and, for the translation, the angle between directions (scale-free) and the
  length error of the aligned step relative to the reference step;
- ``focal_error``: per image, ``|f - f_ref| / f_ref`` when both know the intrinsics (the mean
  of ``fx`` and ``fy``).

Poses are :class:`~specglue.geometry.poses.SequencePoses` (world-to-camera ``[4, 4]``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .poses import SequencePoses

#: the fewest common images for an alignment (a similarity has 7 degrees of freedom)
MIN_ALIGNED_IMAGES = 3


def align_similarity(source: np.ndarray, target: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray]:
    """The similarity ``target ≈ s R source + t`` of least squares (Umeyama 1991).

    Args:
        source / target: ``[N, 3]`` corresponding points, ``N >= 3``.

    Returns:
        ``(s, R [3, 3], t [3])``.

    Raises:
        ValueError: shapes differ, fewer than 3 points, or the source points all coincide.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3:
        raise ValueError(f"source and target must both be [N, 3], got {source.shape} and {target.shape}")
    if len(source) < MIN_ALIGNED_IMAGES:
        raise ValueError(f"a similarity needs at least {MIN_ALIGNED_IMAGES} points, got {len(source)}")
    mean_s, mean_t = source.mean(0), target.mean(0)
    centred_s, centred_t = source - mean_s, target - mean_t
    variance = (centred_s ** 2).sum() / len(source)
    if variance <= 1e-24:
        raise ValueError("the source points all coincide: no similarity is defined")
    covariance = centred_t.T @ centred_s / len(source)  # [3, 3]
    U, D, Vt = np.linalg.svd(covariance)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    scale = float(np.trace(np.diag(D) @ S) / variance)
    t = mean_t - scale * R @ mean_s
    return scale, R, t


def align_rotations(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation ``A [3, 3]`` with ``target_i ≈ A source_i`` of least chordal error, for
    orientations ``[N, 3, 3]`` (camera-to-world rotations in two worlds).

    Raises:
        ValueError: shapes differ or are not ``[N, 3, 3]`` with ``N >= 1``.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if source.shape != target.shape or source.ndim != 3 or source.shape[1:] != (3, 3) or not len(source):
        raise ValueError(f"source and target must both be [N, 3, 3], got {source.shape} and {target.shape}")
    U, _, Vt = np.linalg.svd(np.einsum("nij,nkj->ik", target, source))  # sum of target_i source_i^T
    return U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt


def _angle_deg(R: np.ndarray) -> float:
    """The rotation angle of ``R [3, 3]`` in degrees."""
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))


def _direction_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """The angle between two vectors in degrees (0 when either is zero)."""
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms <= 0:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / norms, -1.0, 1.0))))


def _summary(values: Sequence[float]) -> Dict[str, float]:
    values = np.asarray(values, np.float64)
    if not len(values):
        return {"mean": float("nan"), "median": float("nan"), "max": float("nan")}
    return {"mean": float(values.mean()), "median": float(np.median(values)), "max": float(values.max())}


def evaluate_trajectory(estimate: SequencePoses, reference: SequencePoses,
                        names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Errors of ``estimate`` against ``reference`` (see the module doc).

    Args:
        estimate: the reconstruction's poses (e.g. :func:`~specglue.geometry.poses.reconstruction_poses`).
        reference: the known poses.
        names: the images to judge (default: every image of the reference). Images of the
            estimate outside them are ignored.

    Returns:
        ``images`` (judged), ``registered`` (count) and ``registered_fraction``;
        ``ate_rmse``, ``path_length`` and ``ate_relative``; ``rotation_error_deg``,
        ``rpe_rotation_deg``, ``rpe_direction_deg``, ``rpe_step_error`` (mean / median / max
        each); ``focal_error`` (mean / median / max, or None without reference intrinsics);
        ``per_image``: name -> ``{"centre_error", "rotation_error_deg", "focal_error"}``;
        ``similarity``: ``{"scale", "R", "t"}`` mapping estimated world points into the
        reference's world (``x_ref = s R x_est + t``).

    Raises:
        ValueError: a name is not in the reference, or fewer than 3 judged images are registered.
    """
    names = sorted(reference.T_cam_from_world) if names is None else list(names)
    missing = [n for n in names if n not in reference.T_cam_from_world]
    if missing:
        raise ValueError(f"{len(missing)} images have no reference pose in {reference.source} "
                         f"(first: {missing[0]!r})")
    common = [n for n in names if n in estimate.T_cam_from_world]
    if len(common) < MIN_ALIGNED_IMAGES:
        raise ValueError(f"only {len(common)} of the {len(names)} images with a reference pose are registered "
                         f"in {estimate.source}: at least {MIN_ALIGNED_IMAGES} are needed to align them")
    est_centres, ref_centres = estimate.camera_centres(), reference.camera_centres()
    source = np.stack([est_centres[n] for n in common])  # [C, 3]
    target = np.stack([ref_centres[n] for n in common])  # [C, 3]
    scale, R_align, t_align = align_similarity(source, target)
    aligned = source @ (scale * R_align).T + t_align  # [C, 3]
    centre_errors = np.linalg.norm(aligned - target, axis=1)  # [C]
    all_ref = np.stack([ref_centres[n] for n in names])  # [N, 3]
    path_length = float(np.linalg.norm(np.diff(all_ref, axis=0), axis=1).sum())
    ate_rmse = float(np.sqrt((centre_errors ** 2).mean()))

    est_orientations = np.stack([estimate.T_cam_from_world[n][:3, :3].T for n in common])  # [C, 3, 3]
    ref_orientations = np.stack([reference.T_cam_from_world[n][:3, :3].T for n in common])  # [C, 3, 3]
    R_orient = align_rotations(est_orientations, ref_orientations)
    rotation_errors = [_angle_deg(ref.T @ R_orient @ est) for est, ref in zip(est_orientations, ref_orientations)]

    rpe_rotation: List[float] = []
    rpe_direction: List[float] = []
    rpe_step: List[float] = []
    for a, b in zip(common[:-1], common[1:]):
        rel_est, rel_ref = estimate.relative_pose(a, b), reference.relative_pose(a, b)
        rpe_rotation.append(_angle_deg(rel_ref[:3, :3].T @ rel_est[:3, :3]))
        # steps in the reference's world: aligned centres against reference centres
        step_est = aligned[common.index(b)] - aligned[common.index(a)]
        step_ref = ref_centres[b] - ref_centres[a]
        rpe_direction.append(_direction_angle_deg(step_est, step_ref))
        ref_length = np.linalg.norm(step_ref)
        if ref_length > 0:
            rpe_step.append(float(np.linalg.norm(step_est - step_ref) / ref_length))

    focal_errors: Dict[str, float] = {}
    for n in common:
        K_est, K_ref = estimate.K.get(n), reference.K.get(n)
        if K_est is not None and K_ref is not None:
            f_ref = (K_ref[0, 0] + K_ref[1, 1]) / 2
            focal_errors[n] = float(abs((K_est[0, 0] + K_est[1, 1]) / 2 - f_ref) / f_ref)

    return {
        "images": len(names),
        "registered": len(common),
        "registered_fraction": len(common) / len(names),
        "ate_rmse": ate_rmse,
        "path_length": path_length,
        "ate_relative": ate_rmse / path_length if path_length > 0 else float("nan"),
        "rotation_error_deg": _summary(rotation_errors),
        "rpe_rotation_deg": _summary(rpe_rotation),
        "rpe_direction_deg": _summary(rpe_direction),
        "rpe_step_error": _summary(rpe_step),
        "focal_error": _summary(list(focal_errors.values())) if focal_errors else None,
        "per_image": {n: {"centre_error": float(e), "rotation_error_deg": r, "focal_error": focal_errors.get(n)}
                      for n, e, r in zip(common, centre_errors, rotation_errors)},
        "similarity": {"scale": scale, "R": R_align.tolist(), "t": t_align.tolist()},
    }


def reference_in_estimate(reference: SequencePoses, similarity: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """The reference camera centres carried into the estimate's world by the inverse of
    ``similarity`` (from :func:`evaluate_trajectory`): name -> ``[3]``, to draw beside the estimate."""
    scale, R, t = float(similarity["scale"]), np.asarray(similarity["R"]), np.asarray(similarity["t"])
    return {n: R.T @ (c - t) / scale for n, c in reference.camera_centres().items()}


__all__ = ["MIN_ALIGNED_IMAGES", "align_rotations", "align_similarity", "evaluate_trajectory", "reference_in_estimate"]
