"""Ground-truth pose readers: the endoscopy SfM layout and COLMAP models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specglue.geometry.poses import (
    quaternion_to_matrix,
    read_colmap_poses,
    read_endoscopy_sfm_points,
    read_endoscopy_sfm_poses,
    read_sequence_poses,
)

SINUS = "13_sinus_endoscopy_sfm_poses"


def _write_colmap_model(folder: Path, K: dict, T: dict, size=(1920, 1080)) -> None:
    """A COLMAP model with one PINHOLE camera per distinct K and the given world-to-camera poses."""
    pycolmap = pytest.importorskip("pycolmap")
    model = pycolmap.Reconstruction()
    for image_id, name in enumerate(sorted(T), start=1):
        fx, fy, cx, cy = K[name][0, 0], K[name][1, 1], K[name][0, 2], K[name][1, 2]
        camera = pycolmap.Camera(model="PINHOLE", width=size[0], height=size[1], params=[fx, fy, cx, cy],
                                 camera_id=image_id)
        model.add_camera_with_trivial_rig(camera)
        R, t = T[name][:3, :3], T[name][:3, 3]
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(R), t)
        model.add_image_with_trivial_frame(pycolmap.Image(name=name, camera_id=image_id, image_id=image_id), pose)
    folder.mkdir(parents=True, exist_ok=True)
    model.write(str(folder))


def test_quaternion_matches_rodrigues():
    cv2 = pytest.importorskip("cv2")
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    angle = 0.7
    q = np.r_[axis * np.sin(angle / 2), np.cos(angle / 2)]
    np.testing.assert_allclose(quaternion_to_matrix(q), cv2.Rodrigues(axis * angle)[0], atol=1e-12)
    with pytest.raises(ValueError, match="zero"):
        quaternion_to_matrix([0, 0, 0, 0])


def _projection_share(poses, points, views) -> float:
    """Share of the observations that land in front of their camera and inside its image."""
    inside, total = 0, 0
    for point, frames in zip(points, views):
        for frame in frames:
            name = f"{frame:08d}.jpg"
            T, K = poses.T_cam_from_world[name], poses.K[name]
            x = T[:3, :3] @ point + T[:3, 3]
            u, v = (K @ x)[:2] / x[2]
            inside += bool(x[2] > 0 and 0 <= u < 1920 and 0 <= v < 1080)
            total += 1
    return inside / total


def test_endoscopy_layout_projects_its_points(data_dir):
    """The poses put the 3D points of structure.ply in front of the cameras that see them and
    inside their images (the convention x_cam = R^T (x_world - c)), and move about 3.8 degrees
    over 20 frames (PROVENANCE.txt)."""
    folder = data_dir / SINUS
    poses = read_endoscopy_sfm_poses(folder)
    assert len(poses.names) == 35 and poses.names[0] == "00004584.jpg"
    points, views = read_endoscopy_sfm_points(folder)
    assert points.shape == (570, 3) and len(views) == 570
    assert views[0].tolist() == [4584, 4587, 4588] and views[-1].tolist() == [4605, 4607, 4608, 4610, 4615, 4618]
    assert sum(len(v) for v in views) > 6000
    assert _projection_share(poses, points, views) == 1.0  # all 6585 observations
    R = poses.relative_pose(poses.names[0], poses.names[20])[:3, :3]
    assert np.degrees(np.arccos((np.trace(R) - 1) / 2)) == pytest.approx(3.75, abs=0.1)
    name = poses.names[0]
    T = poses.T_cam_from_world[name]
    np.testing.assert_allclose(T[:3, :3] @ poses.camera_centres()[name] + T[:3, 3], 0, atol=1e-12)


def test_per_view_intrinsics(tmp_path, data_dir):
    """The other layout: f cx cy per registered view."""
    folder = data_dir / SINUS
    for name in ("motion.yaml", "visible_view_indexes"):
        (tmp_path / name).write_text((folder / name).read_text())
    (tmp_path / "camera_intrinsics_per_view").write_text("\n".join(f"{600 + i} 900 500" for i in range(35)))
    poses = read_endoscopy_sfm_poses(tmp_path)
    assert poses.K["00004586.jpg"][0, 0] == 602 and poses.K["00004586.jpg"][1, 1] == 602
    (tmp_path / "camera_intrinsics_per_view").write_text("1 2 3 4 5")
    with pytest.raises(ValueError, match="camera_intrinsics_per_view holds 5 numbers"):
        read_endoscopy_sfm_poses(tmp_path)


def test_colmap_model_recovers_known_poses_exactly(tmp_path, data_dir):
    """A COLMAP model written by pycolmap with the sinus poses reads back as the same ground
    truth: intrinsics, poses and relative poses."""
    truth = read_endoscopy_sfm_poses(data_dir / SINUS)
    _write_colmap_model(tmp_path / "sparse" / "0", truth.K, truth.T_cam_from_world)
    for path in (tmp_path, tmp_path / "sparse", tmp_path / "sparse" / "0"):
        read = read_sequence_poses(path)
        assert read.names == truth.names
        for name in truth.names:
            np.testing.assert_allclose(read.K[name], truth.K[name], atol=1e-9)
            np.testing.assert_allclose(read.T_cam_from_world[name], truth.T_cam_from_world[name], atol=1e-9)
        np.testing.assert_allclose(read.relative_pose(truth.names[0], truth.names[20]),
                                   truth.relative_pose(truth.names[0], truth.names[20]), atol=1e-9)


def test_bad_ground_truth_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_sequence_poses(tmp_path / "nothing")
    with pytest.raises(ValueError, match="holds no COLMAP model"):
        read_colmap_poses(tmp_path)
    (tmp_path / "motion.yaml").write_text("poses[]:\n  poses[0]:\n    position:\n      x: 1\n")
    (tmp_path / "visible_view_indexes").write_text("1\n")
    (tmp_path / "camera_intrinsics_per_view").write_text("1 1 0 0\n")
    with pytest.raises(ValueError, match="pose 0 has no orientation"):
        read_sequence_poses(tmp_path)


def test_sfm_points_files_must_agree(tmp_path):
    (tmp_path / "structure.ply").write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n"
                                            "property float y\nproperty float z\nend_header\n0 0 1\n1 1 2\n")
    (tmp_path / "view_indexes_per_point").write_text("-1\n3\n4\n-1\n4\n")
    points, views = read_endoscopy_sfm_points(tmp_path)
    assert points.shape == (2, 3) and [v.tolist() for v in views] == [[3, 4], [4]]
    (tmp_path / "view_indexes_per_point").write_text("-1\n3\n")
    with pytest.raises(ValueError, match="2 points but view_indexes_per_point lists 1"):
        read_endoscopy_sfm_points(tmp_path)
    (tmp_path / "structure.ply").unlink()
    with pytest.raises(ValueError, match="lacks structure.ply"):
        read_endoscopy_sfm_points(tmp_path)
