"""The collection commands end to end: extract -> pairs -> match-pairs -> colmap, and reconstruct."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from specglue.cli import main
from specglue import storage
from specglue.collection.extract import ExtractionSettings
from specglue.collection.reconstruct import reconstruct

pycolmap = pytest.importorskip("pycolmap")
pytestmark = pytest.mark.slow


def test_cli_chain_gives_a_database_pycolmap_reads_back(frames_dir: Path, data_dir: Path, tmp_path: Path, capsys):
    # a small collection from two folders of the shared data (nested names)
    images = tmp_path / "images"
    for folder, names in ((frames_dir, ["frame_00.png", "frame_01.png", "frame_02.png"]),
                          (data_dir / "12_phantom_bowel_metal_instrument_sequence_rvim" / "frames",
                           ["frame_200.png", "frame_201.png"])):
        (images / folder.parent.name[:2]).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(folder / name, images / folder.parent.name[:2] / name)
    run = lambda *argv: main([str(a) for a in argv])  # noqa: E731
    assert run("extract", images, "--out", tmp_path / "f.h5", "--max-keypoints", "256") == 0
    assert run("pairs", tmp_path / "f.h5", "--mode", "exhaustive", "--out", tmp_path / "pairs.txt") == 0
    assert run("match-pairs", tmp_path / "f.h5", tmp_path / "pairs.txt", "--out", tmp_path / "m.h5") == 0
    assert run("colmap", tmp_path / "f.h5", tmp_path / "m.h5", "--database", tmp_path / "db.db") == 0
    out = capsys.readouterr().out
    assert "10 pairs in" in out and "5 images, 5 cameras" in out

    pairs = [line.split() for line in (tmp_path / "pairs.txt").read_text().splitlines()]
    with storage.open_h5(tmp_path / "f.h5") as f, storage.open_h5(tmp_path / "m.h5") as m:
        names = storage.leaf_groups(f, "keypoints")
        keypoints = {n: storage.read_image_features(f, n).keypoints for n in names}
        matches = {(a, b): storage.read_matches(m, a, b)[0] for a, b in pairs}
    assert names[0] == "10/frame_00.png" and len(names) == 5
    with pycolmap.Database.open(str(tmp_path / "db.db")) as db:
        assert db.num_images() == 5
        ids = {image.name: image.image_id for image in db.read_all_images()}
        assert sorted(ids) == names
        for name in names:
            np.testing.assert_allclose(db.read_keypoints(ids[name])[:, :2], keypoints[name] + 0.5, atol=1e-4)
        assert db.num_matched_image_pairs() == 10
        for (a, b), expected in matches.items():
            stored = db.read_matches(ids[a], ids[b])
            if ids[a] > ids[b]:
                stored = stored[:, ::-1]
            np.testing.assert_array_equal(np.sort(stored, 0), np.sort(expected, 0))
        assert sum(len(v) for v in matches.values()) == sum(
            len(db.read_matches(ids[a], ids[b])) for a, b in matches)


def test_reconstruct_sacre_coeur_registers_most_photos(data_dir: Path, tmp_path: Path):
    summary = reconstruct(data_dir / "02_hloc_sacre_coeur" / "mapping", tmp_path,
                          ExtractionSettings(max_num_keypoints=1024, resize=1024), progress=False)
    assert summary["images_total"] == 10
    assert summary["registered_images"] >= 8
    assert summary["points3D"] > 300 and summary["mean_reprojection_error"] < 1.5
    model = pycolmap.Reconstruction(str(tmp_path / "sparse"))
    assert model.num_reg_images() == summary["registered_images"]
    assert json.loads((tmp_path / "summary.json").read_text())["points3D"] == summary["points3D"]
    assert (tmp_path / "reconstruction.png").stat().st_size > 10_000


def test_reconstruct_a_laparoscopic_video_from_the_cli(lap_video: Path, tmp_path: Path, capsys):
    out = tmp_path / "rec"
    assert main(["reconstruct", str(lap_video), "--out", str(out), "--max-keypoints", "512"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert f"registered {summary['registered_images']} of 12 images" in printed
    assert summary["registered_images"] >= 10 and summary["points3D"] >= 100
    assert summary["cameras"] == 1  # one shared camera for a video
    assert summary["reliable"] and "x width" in printed and "UNRELIABLE" not in captured.err
    assert sorted(p.name for p in (out / "images").glob("*.png"))[0] == "frame_000000.png"
    assert (out / "sparse" / "points3D.bin").is_file() and (out / "reconstruction.png").is_file()
    assert (out / "model.html").is_file()


def test_a_folder_of_numbered_frames_is_one_camera_with_a_plausible_focal(data_dir: Path, tmp_path: Path):
    frames = data_dir / "10_laparoscopic_cholecystectomy_sequence_rvim" / "frames"
    summary = reconstruct(frames, tmp_path, ExtractionSettings(max_num_keypoints=512), progress=False)
    assert summary["settings"]["source_kind"] == "sequence" and summary["settings"]["mapping"] == "video"
    assert summary["pairs_mode"] == "sequential"
    assert summary["registered_images"] == 12 and summary["cameras"] == 1
    camera = summary["cameras_checked"][0]
    # video mapping keeps the distortion fixed at 0 (up to the rounding of the corner's undistortion)
    assert 0.3 <= camera["focal_over_width"] <= 5 and abs(camera["corner_distortion"]) < 1e-9
    assert summary["intrinsics"]["self_calibrated_focal"] is not None and summary["reliable"]


def test_colmap_and_reconstruct_need_the_extra(monkeypatch, lap_features: Path, tmp_path: Path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "pycolmap", None)
    (tmp_path / "m.h5").write_bytes(b"")
    assert main(["colmap", str(lap_features), str(tmp_path / "m.h5"), "--database", str(tmp_path / "x.db")]) == 1
    assert "pip install 'specglue[colmap]'" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()
