"""Trajectory accuracy: similarity alignment and the errors after it."""

import numpy as np
import pytest

from specglue.geometry.poses import SequencePoses
from specglue.geometry.trajectory import align_rotations, align_similarity, evaluate_trajectory, reference_in_estimate


def _rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(degrees)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


def _sequence(n=12, focal=500.0, seed=0):
    """Cameras on a curve, looking roughly along +z while turning slowly."""
    rng = np.random.default_rng(seed)
    K = np.array([[focal, 0, 320], [0, focal, 240], [0, 0, 1.0]])
    T = {}
    for i in range(n):
        centre = np.array([np.sin(i / 4), 0.3 * i / n, i / 3]) + rng.normal(0, 0.01, 3)
        R = _rotation([0.2, 1, 0.1], 3 * i)  # world -> camera
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = R, -R @ centre
        T[f"{i:04d}.jpg"] = pose
    return SequencePoses({name: K for name in T}, T, "synthetic")


def _transformed(poses, scale, R, t, focal_factor=1.0):
    """The same cameras in another world: x_new = scale R x + t (what SfM may return)."""
    T_new = {}
    for name, T in poses.T_cam_from_world.items():
        R_cw, c = T[:3, :3], poses.camera_centres()[name]
        R_new = R_cw @ R.T
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = R_new, -R_new @ (scale * R @ c + t)
        T_new[name] = pose
    K = {name: np.diag([focal_factor, focal_factor, 1.0]) @ k for name, k in poses.K.items()}
    return SequencePoses(K, T_new, "estimate")


def test_align_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(20, 3))
    R = _rotation([1, 2, 3], 70)
    target = 2.5 * source @ R.T + np.array([1.0, -2.0, 0.5])
    scale, R_est, t_est = align_similarity(source, target)
    assert scale == pytest.approx(2.5)
    np.testing.assert_allclose(R_est, R, atol=1e-9)
    np.testing.assert_allclose(t_est, [1.0, -2.0, 0.5], atol=1e-9)
    with pytest.raises(ValueError, match="at least 3"):
        align_similarity(source[:2], target[:2])
    with pytest.raises(ValueError, match="coincide"):
        align_similarity(np.zeros((5, 3)), target[:5])


def test_align_rotations_recovers_a_known_rotation():
    rng = np.random.default_rng(2)
    source = np.stack([_rotation(rng.normal(size=3), rng.uniform(0, 180)) for _ in range(6)])
    A = _rotation([0.3, -1, 2], 50)
    np.testing.assert_allclose(align_rotations(source, A @ source), A, atol=1e-9)
    with pytest.raises(ValueError, match=r"\[N, 3, 3\]"):
        align_rotations(source[:, :2], source[:, :2])


def test_a_similar_copy_of_the_reference_has_no_error():
    reference = _sequence()
    estimate = _transformed(reference, 0.01, _rotation([0, 0, 1], 120), np.array([5.0, 0, 0]), focal_factor=1.1)
    result = evaluate_trajectory(estimate, reference)
    assert result["registered_fraction"] == 1.0
    assert result["ate_relative"] < 1e-9
    assert result["rotation_error_deg"]["max"] < 1e-5
    assert result["rpe_rotation_deg"]["max"] < 1e-5
    assert result["rpe_direction_deg"]["max"] < 1e-4
    assert result["focal_error"]["mean"] == pytest.approx(0.1)
    assert result["similarity"]["scale"] == pytest.approx(100.0)
    carried = reference_in_estimate(reference, result["similarity"])
    for name, centre in estimate.camera_centres().items():
        np.testing.assert_allclose(carried[name], centre, atol=1e-9)


def test_errors_grow_with_perturbation_and_missing_frames_count():
    reference = _sequence()
    estimate = _transformed(reference, 1.0, np.eye(3), np.zeros(3))
    name, moved = estimate.names[5], estimate.names[8]
    turned = estimate.T_cam_from_world[name].copy()  # turned by 4 degrees about its centre
    centre = estimate.camera_centres()[name]
    turned[:3, :3] = _rotation([1, 0, 0], 4.0) @ turned[:3, :3]
    turned[:3, 3] = -turned[:3, :3] @ centre
    estimate.T_cam_from_world[name] = turned
    estimate.T_cam_from_world[moved][:3, 3] -= estimate.T_cam_from_world[moved][:3, :3] @ np.array([0.05, 0, 0])
    del estimate.T_cam_from_world[estimate.names[-1]]
    result = evaluate_trajectory(estimate, reference)
    assert result["registered"] == len(reference.names) - 1
    assert result["registered_fraction"] == pytest.approx(11 / 12)
    # the orientations' alignment shares the 4 degrees out among the 11 images: 10/11 stay with the turned one
    assert result["rotation_error_deg"]["max"] == pytest.approx(4.0 * 10 / 11, abs=0.05)
    assert result["per_image"][name]["rotation_error_deg"] == result["rotation_error_deg"]["max"]
    assert result["rotation_error_deg"]["median"] == pytest.approx(4.0 / 11, abs=0.05)
    assert result["per_image"][moved]["centre_error"] == max(e["centre_error"] for e in result["per_image"].values())
    assert 0 < result["ate_relative"] < 0.05
    assert result["rpe_rotation_deg"]["max"] == pytest.approx(4.0, abs=0.3)
    # only the judged names count, and unknown names are refused
    subset = evaluate_trajectory(estimate, reference, names=reference.names[:4])
    assert subset["images"] == 4 and subset["rotation_error_deg"]["max"] < 1e-5
    with pytest.raises(ValueError, match="no reference pose"):
        evaluate_trajectory(estimate, reference, names=["nope.jpg"])


def test_too_few_registered_images_are_refused():
    reference = _sequence()
    estimate = SequencePoses({}, {n: reference.T_cam_from_world[n] for n in reference.names[:2]}, "estimate")
    with pytest.raises(ValueError, match="only 2 of the 12"):
        evaluate_trajectory(estimate, reference)
