"""The cameras of a reconstruction: one camera per sequence, a sane focal, known intrinsics held,
implausible models flagged. On synthetic sequences with known geometry, through the stages of
``reconstruct`` after matching (:func:`map_features`).

The scene is an endoscopy-like surface 5.5-10.5 units ahead of a camera (640x480, f = 500 px) that
moves sideways and turns slowly; keypoints are the projections plus 0.3 px noise, matches the
true correspondences of every pair of frames up to 4 apart, with 5 % outliers.
"""

import json
import re

import numpy as np
import pytest

pycolmap = pytest.importorskip("pycolmap")

from specglue.collection import colmap  # noqa: E402
from specglue.errors import SpecglueError  # noqa: E402
from specglue.storage import (  # noqa: E402
    ImageFeatures, open_h5, write_image_features, write_pair_matches, write_settings)
from specglue.collection.reconstruct import map_features  # noqa: E402

W, H, F = 640, 480, 500.0
FRAMES = 15
WINDOW = 4
NOISE_PX = 0.3


def _rotation_y(degrees):
    a = np.radians(degrees)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def write_sequence(root, step, rng):
    """Features and matches files of a sequence whose camera moves ``step`` per frame; the
    true world-to-camera poses written as a COLMAP model in ``root/truth``."""
    xy = rng.uniform(-5, 5, (1500, 2))
    points = np.c_[xy, 8 + 2.5 * np.sin(xy[:, 0]) * np.cos(xy[:, 1])]  # [P, 3]
    names = [f"{i:06d}.png" for i in range(FRAMES)]
    truth = pycolmap.Reconstruction()
    truth.add_camera_with_trivial_rig(pycolmap.Camera.create_from_model_name(1, "PINHOLE", F, W, H))
    keypoints, point_of = [], []
    for i, name in enumerate(names):
        R = _rotation_y(1.0 * i)
        t = -R @ np.array([step * i, 0.3 * step * np.sin(i), 0.0])
        truth.add_image_with_trivial_frame(pycolmap.Image(name=name, camera_id=1, image_id=i + 1),
                                           pycolmap.Rigid3d(pycolmap.Rotation3d(R), t))
        cam = points @ R.T + t
        uv = cam[:, :2] / cam[:, 2:] * F + np.array([(W - 1) / 2, (H - 1) / 2])  # hloc's pixels
        uv += rng.normal(0, NOISE_PX, uv.shape)
        seen = np.flatnonzero((uv[:, 0] > 0) & (uv[:, 0] < W - 1) & (uv[:, 1] > 0) & (uv[:, 1] < H - 1))
        keypoints.append(uv[seen].astype(np.float32))
        point_of.append(seen)
    (root / "truth").mkdir()
    truth.write(str(root / "truth"))
    with open_h5(root / "features.h5", "w") as f:
        for name, kpts in zip(names, keypoints):
            write_image_features(f, name, ImageFeatures(
                keypoints=kpts, descriptors=np.zeros((len(kpts), 4), np.float32),
                scores=np.ones(len(kpts), np.float32), image_size=np.array([W, H], np.float32)))
        write_settings(f, {"source_kind": "sequence"})
    with open_h5(root / "matches.h5", "w") as f:
        for i in range(FRAMES):
            for j in range(i + 1, min(i + WINDOW + 1, FRAMES)):
                index_in_j = {p: k for k, p in enumerate(point_of[j])}
                matches0 = np.array([index_in_j.get(p, -1) for p in point_of[i]])
                wrong = rng.random(len(matches0)) < 0.05
                matches0[wrong] = rng.integers(0, len(keypoints[j]), wrong.sum())
                write_pair_matches(f, names[i], names[j], matches0, np.ones(len(matches0), np.float32))
    return root


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    return write_sequence(tmp_path_factory.mktemp("moving"), step=0.2, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def moving_summary(moving):
    return map_features(moving / "features.h5", moving / "matches.h5", moving / "out", ground_truth=moving / "truth")


def test_a_sequence_gets_one_sane_camera_and_an_accurate_trajectory(moving, moving_summary):
    summary = moving_summary
    assert summary["settings"]["mapping"] == "video" and summary["settings"]["source_kind"] == "sequence"
    assert summary["registered_images"] == FRAMES and summary["cameras"] == 1
    assert summary["reliable"] and summary["warnings"] == []
    # the focal starts from self-calibration, not COLMAP's 1.2 x 640 = 768 px, and is refined
    assert summary["intrinsics"]["self_calibrated_focal"] == pytest.approx(F, rel=0.15)
    assert summary["intrinsics"]["refined"] == "focal"
    camera = summary["cameras_checked"][0]
    assert camera["focal"] == pytest.approx(F, rel=0.03)
    assert camera["params"][3] == 0.0  # distortion held
    trajectory = summary["trajectory"]
    assert trajectory["registered_fraction"] == 1.0
    assert trajectory["ate_relative"] < 0.01
    assert trajectory["rotation_error_deg"]["max"] < 0.5
    assert trajectory["focal_error"]["mean"] < 0.03
    assert (moving / "out" / "model.html").is_file() and (moving / "out" / "reconstruction.png").is_file()


def test_a_camera_that_barely_moves_is_not_reported_as_a_success(tmp_path):
    """Millimetres against metres: no pair sees the scene under the 1 degree mapping starts from."""
    root = write_sequence(tmp_path, step=0.002, rng=np.random.default_rng(1))
    with pytest.raises(SpecglueError, match="no initial image pair"):
        map_features(root / "features.h5", root / "matches.h5", root / "out")
    assert not (root / "out" / "sparse").exists()


def test_a_model_whose_cameras_barely_move_is_flagged(moving, moving_summary):
    """The same points seen from centres pulled 100 times closer together: the check says so."""
    model = pycolmap.Reconstruction(str(moving / "out" / "sparse"))
    assert colmap.check_cameras(model)["median_triangulation_deg"] > 5
    first = model.image(1).projection_center()
    for frame in model.frames.values():
        R = frame.rig_from_world.rotation.matrix()
        centre = -R.T @ frame.rig_from_world.translation
        frame.rig_from_world = pycolmap.Rigid3d(frame.rig_from_world.rotation, -R @ (first + 0.01 * (centre - first)))
    checked = colmap.check_cameras(model)
    assert checked["median_triangulation_deg"] < colmap.MIN_TRIANGULATION_DEG
    assert not checked["reliable"] and "barely move" in checked["warnings"][0]


def test_known_intrinsics_are_held(moving, tmp_path):
    given = [480.0, 320.0, 240.0, 0.0]  # a focal 4 % off: held anyway
    summary = map_features(moving / "features.h5", moving / "matches.h5", tmp_path / "list", camera_params=given)
    assert summary["intrinsics"]["given"] and summary["intrinsics"]["refined"] == "none"
    assert summary["cameras_checked"][0]["params"] == given

    cameras_txt = tmp_path / "cameras.txt"
    cameras_txt.write_text("# Camera list\n1 PINHOLE 640 480 500 500 320 240\n")
    assert colmap.read_camera_file(cameras_txt) == ("PINHOLE", [500.0, 500.0, 320.0, 240.0], (640, 480))
    summary = map_features(moving / "features.h5", moving / "matches.h5", tmp_path / "file", camera_params=cameras_txt)
    assert summary["cameras_checked"][0]["model"] == "PINHOLE"
    assert summary["cameras_checked"][0]["params"] == [500.0, 500.0, 320.0, 240.0]
    assert summary["trajectory"] is None

    cameras_txt.write_text("1 PINHOLE 1280 960 1000 1000 640 480\n")
    with pytest.raises(ValueError, match="1280x960, but the images are 640x480"):
        map_features(moving / "features.h5", moving / "matches.h5", tmp_path / "bad", camera_params=cameras_txt)
    with pytest.raises(ValueError, match="expected 4 numbers, got 3"):
        map_features(moving / "features.h5", moving / "matches.h5", tmp_path / "short", camera_params=[500, 320, 240])


def test_implausible_intrinsics_are_flagged(moving, moving_summary):
    model = pycolmap.Reconstruction(str(moving / "out" / "sparse"))
    assert colmap.check_cameras(model)["reliable"]
    camera = model.cameras[1]
    camera.params = [20 * W, W / 2, H / 2, 0.0]  # a telephoto focal for an endoscope
    checked = colmap.check_cameras(model)
    assert not checked["reliable"] and "20.00 x the image width" in checked["warnings"][0]
    assert "--camera-params" in checked["warnings"][0]
    camera.params = [F, W / 2, H / 2, -3.0]  # distortion that folds the corners back
    checked = colmap.check_cameras(model)
    assert not checked["reliable"] and "radial distortion" in checked["warnings"][0]
    assert checked["cameras"][0]["corner_distortion"] > colmap.MAX_PLAUSIBLE_DISTORTION


def test_colmap_log_is_quiet_unless_verbose(moving, tmp_path, capfd, caplog):
    features, matches = moving / "features.h5", moving / "matches.h5"
    glog_line = re.compile(r"^[IW]\d{8} ", re.M)  # "I20261207 03:48:51.906 1401 file.cc:123] message"
    colmap.write_database(features, matches, tmp_path / "quiet.db", verify=True)
    map_features(features, matches, tmp_path / "quiet")
    assert not glog_line.search(capfd.readouterr().err)
    with caplog.at_level("INFO", logger="specglue"):
        colmap.write_database(features, matches, tmp_path / "verbose.db", verify=True)
    assert glog_line.search(capfd.readouterr().err)


def test_trajectory_and_view_from_the_cli(moving, moving_summary, tmp_path, capsys):
    from specglue.cli import main

    result = tmp_path / "trajectory.json"
    assert main(["eval", "trajectory", str(moving / "out"), "--gt", str(moving / "truth"), "--out", str(result)]) == 0
    assert f"{FRAMES}/{FRAMES} registered" in capsys.readouterr().out
    written = json.loads(result.read_text())
    assert written["ate_relative"] == pytest.approx(moving_summary["trajectory"]["ate_relative"], rel=1e-6)
    page = tmp_path / "page.html"
    assert main(["view", str(moving / "out"), "--gt", str(moving / "truth"), "--out", str(page)]) == 0
    assert '"reference"' in page.read_text() and f"wrote {page}" in capsys.readouterr().out
    assert main(["eval", "trajectory", str(tmp_path), "--gt", str(moving / "truth")]) == 1
    assert "holds no COLMAP model" in capsys.readouterr().err
