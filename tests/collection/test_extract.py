"""specglue.collection.extract and sources: folders and videos to an hloc features file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from specglue import specular
from specglue import storage
from specglue.collection.extract import ExtractionSettings, extract_features
from specglue.collection.sources import ImageSource, frame_name, write_frames
from specglue.features import build_extractor
from specglue.images import load_image

from .conftest import SMALL

pytestmark = pytest.mark.slow


def test_features_file_has_hloc_layout_and_matches_the_extractor(lap_features: Path, frames_dir: Path):
    with storage.open_h5(lap_features) as f:
        names = storage.leaf_groups(f, "keypoints")
        settings = storage.read_settings(f)
        group = f["frame_03.png"]
        assert group["descriptors"].shape[0] == 128  # [D, N], transposed as hloc stores them
        assert group["keypoints"].shape == (group["descriptors"].shape[1], 2)
        stored = storage.read_image_features(f, "frame_03.png")
    assert names == sorted(p.name for p in frames_dir.glob("*.png"))
    assert settings["extraction"]["features"] == "aliked"
    assert settings["extraction"]["max_num_keypoints"] == 256
    assert settings["source_kind"] == "sequence"  # frame_00.png ... frame_11.png

    rgb = load_image(frames_dir / "frame_03.png")
    extractor = build_extractor("aliked", max_num_keypoints=256, resize=1024).eval()
    feats = extractor.extract(rgb)
    np.testing.assert_array_equal(stored.keypoints, feats["keypoints"][0].numpy())
    np.testing.assert_array_equal(stored.descriptors, feats["descriptors"][0].numpy())
    np.testing.assert_array_equal(stored.image_size, [320, 240])
    mask = specular.detect(rgb)
    expected = specular.sample_mask(torch.from_numpy(mask)[None], feats["keypoints"], margin=3)[0]
    np.testing.assert_array_equal(stored.specularity, expected.numpy())
    assert 0 < (stored.specularity > 0.5).sum() < len(stored.specularity)


def test_rerun_skips_images_already_in_the_file(frames_dir: Path, tmp_path: Path):
    subset = tmp_path / "frames"
    subset.mkdir()
    for path in sorted(frames_dir.glob("*.png"))[:3]:
        shutil.copy(path, subset / path.name)
    out = tmp_path / "features.h5"
    first = extract_features(subset, out, SMALL, progress=False)
    assert (first["extracted"], first["skipped"]) == (3, 0)
    with storage.open_h5(out) as f:
        before = storage.read_image_features(f, "frame_00.png").keypoints
    shutil.copy(sorted(frames_dir.glob("*.png"))[3], subset / "frame_03.png")
    second = extract_features(subset, out, SMALL, progress=False)
    assert (second["images"], second["extracted"], second["skipped"]) == (4, 1, 3)
    with storage.open_h5(out) as f:
        np.testing.assert_array_equal(storage.read_image_features(f, "frame_00.png").keypoints, before)
        assert "frame_03.png" in f
    with pytest.raises(ValueError, match="other settings .*max_num_keypoints"):
        extract_features(subset, out, ExtractionSettings(max_num_keypoints=128), progress=False)


def test_masks_from_a_folder_and_no_masks(frames_dir: Path, tmp_path: Path):
    subset = tmp_path / "frames" / "seq"
    subset.mkdir(parents=True)
    shutil.copy(frames_dir / "frame_00.png", subset / "frame_00.png")
    masks = tmp_path / "masks" / "seq"
    masks.mkdir(parents=True)
    mask = np.zeros((240, 320), bool)
    mask[:, :160] = True  # the left half is "specular"
    specular.write_mask(masks / "frame_00.png.png", mask)
    out = tmp_path / "with_masks.h5"
    extract_features(subset.parent, out, ExtractionSettings(max_num_keypoints=256, specular="masks"),
                     masks_dir=tmp_path / "masks", progress=False)
    with storage.open_h5(out) as f:
        feats = storage.read_image_features(f, "seq/frame_00.png")
    left = np.round(feats.keypoints[:, 0]) <= 159 + 3  # nearest pixel within 3 px of the masked half
    np.testing.assert_array_equal(feats.specularity, left.astype(np.float32))

    out_none = tmp_path / "no_masks.h5"
    extract_features(subset.parent, out_none, ExtractionSettings(max_num_keypoints=256, specular="none"),
                     progress=False)
    with storage.open_h5(out_none) as f:
        assert storage.read_image_features(f, "seq/frame_00.png").specularity is None

    shutil.copy(frames_dir / "frame_01.png", subset / "frame_01.png")
    with pytest.raises(ValueError, match="no mask for 1 images, e.g. seq/frame_01.png"):
        extract_features(subset.parent, tmp_path / "x.h5", ExtractionSettings(specular="masks"),
                         masks_dir=tmp_path / "masks", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_video_frames_named_by_index_and_subsampled(lap_video: Path, tmp_path: Path):
    source = ImageSource(lap_video, every=3)
    assert source.kind == "video"
    assert source.names() == [frame_name(i) for i in (0, 3, 6, 9)]
    frames = dict(source.frames(skip={frame_name(3)}))
    assert sorted(frames) == [frame_name(i) for i in (0, 6, 9)]
    assert frames[frame_name(0)].shape == (240, 320, 3)
    written = write_frames(source, tmp_path / "images")
    assert written == source.names()
    assert (tmp_path / "images" / frame_name(9)).is_file()

    out = tmp_path / "video.h5"
    summary = extract_features(lap_video, out, SMALL, every=3, progress=False)
    assert summary["images"] == 4
    with storage.open_h5(out) as f:
        assert storage.leaf_groups(f, "keypoints") == source.names()
        assert storage.read_settings(f)["source_kind"] == "video"


@pytest.mark.parametrize("kind", ["missing", "empty", "not_video", "bad_video"])
def test_bad_sources_are_refused(tmp_path: Path, kind: str):
    path = {"missing": tmp_path / "nope", "empty": tmp_path, "not_video": tmp_path / "notes.txt",
            "bad_video": tmp_path / "broken.mp4"}[kind]
    if kind in ("not_video", "bad_video"):
        path.write_bytes(b"not a video")
    message = {"missing": "does not exist", "empty": "no image .* found under", "not_video": "neither an image folder",
               "bad_video": "cannot open the video"}[kind]
    with pytest.raises(ValueError, match=message):
        extract_features(path, tmp_path / "out" / "features.h5", SMALL, progress=False)
    assert not (tmp_path / "out").exists()


def test_unwritable_output_and_corrupt_file_keep_what_exists(frames_dir: Path, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(ValueError, match="cannot write to the output folder"):
        extract_features(frames_dir, blocker / "features.h5", SMALL, progress=False)
    corrupt = tmp_path / "features.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="cannot read the features file .*features.h5.*--overwrite"):
        extract_features(frames_dir, corrupt, SMALL, progress=False)
    assert corrupt.read_bytes() == b"\x89HDF\r\n\x1a\n truncated"


def test_ray_engine_extracts_the_same_features(frames_dir: Path, tmp_path: Path, monkeypatch):
    """Bit for bit with the same torch thread count (Ray workers run one thread each; other
    thread counts change the convolutions' rounding, ~1e-5 px on keypoints) and the same kernels:
    pinned here, as each process otherwise measures its own choice (ALIKED's layout, the linear
    layers' kernels), which may differ by rounding (seen: descriptors ~1e-7 apart in a full run)."""
    pytest.importorskip("ray")
    from specglue.collection.engine import RayEngine

    monkeypatch.setenv("SPECGLUE_KERNELS", "pytorch")  # inherited by the local Ray cluster's workers

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        extract_features(frames_dir, tmp_path / "plain.h5", SMALL, progress=False)
    finally:
        torch.set_num_threads(threads)
    engine = RayEngine(num_workers=2)
    try:
        summary = extract_features(frames_dir, tmp_path / "ray.h5", SMALL, engine=engine, chunk_size=2,
                                   progress=False)
    finally:
        engine.close()
    assert summary["extracted"] == 12
    with storage.open_h5(tmp_path / "plain.h5") as plain, storage.open_h5(tmp_path / "ray.h5") as ray:
        assert storage.leaf_groups(ray, "keypoints") == storage.leaf_groups(plain, "keypoints")
        for name in storage.leaf_groups(plain, "keypoints"):
            a, b = storage.read_image_features(plain, name), storage.read_image_features(ray, name)
            for key in ("keypoints", "descriptors", "scores", "specularity"):
                np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=f"{name} {key}")


def test_roi_auto_on_endoscope_frames_and_none_on_laparoscopic_ones(tmp_path: Path, data_dir: Path,
                                                                     frames_dir: Path):
    """Sinus frames (black surround): the field of view is estimated once, recorded in the
    settings, and every keypoint lies inside it; laparoscopic frames fill the image: no region."""
    import cv2

    from specglue.features.roi import estimate_roi

    sinus = tmp_path / "sinus"
    sinus.mkdir()
    frames = []
    for name in ("00004584.jpg", "00004594.jpg", "00004604.jpg"):
        rgb = cv2.resize(load_image(data_dir / "13_sinus_endoscopy_sfm_poses" / name), (480, 270),
                         interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(sinus / name.replace(".jpg", ".png")), rgb[:, :, ::-1])
        frames.append(rgb)
    out = tmp_path / "sinus.h5"
    settings = ExtractionSettings(max_num_keypoints=256, specular="none")
    assert settings.roi == "auto"
    extract_features(sinus, out, settings, progress=False)
    view = estimate_roi(frames)
    with storage.open_h5(out) as f:
        recorded = storage.read_settings(f)
        assert recorded["extraction"]["roi"] == "auto"
        assert recorded["roi"]["share"] == pytest.approx(view.mean())
        for name in storage.leaf_groups(f, "keypoints"):
            xy = np.round(storage.read_image_features(f, name).keypoints).astype(int)
            assert len(xy) > 100 and view[xy[:, 1], xy[:, 0]].all()

    lap = tmp_path / "lap.h5"
    extract_features(frames_dir, lap, ExtractionSettings(max_num_keypoints=64, specular="none"), progress=False)
    with storage.open_h5(lap) as f:
        assert storage.read_settings(f)["roi"] is None


def test_roi_file_of_the_wrong_size_is_refused_before_writing(tmp_path: Path, frames_dir: Path):
    import cv2

    cv2.imwrite(str(tmp_path / "view.png"), np.full((100, 100), 255, np.uint8))
    out = tmp_path / "features.h5"
    with pytest.raises(ValueError, match=r"view.png: expected size 240x320"):
        extract_features(frames_dir, out, ExtractionSettings(roi=str(tmp_path / "view.png")), progress=False)
    assert not out.exists() and not list(tmp_path.glob("features.h5*"))
    with pytest.raises(ValueError, match="roi must be 'auto', 'none' or a mask file"):
        ExtractionSettings(roi=str(tmp_path / "missing.png"))


def test_cli_preset_sets_the_keypoint_budget_and_size_unless_given(frames_dir: Path, tmp_path: Path):
    from specglue.cli import main
    from specglue.presets import get_preset

    images = tmp_path / "images"
    images.mkdir()
    for name in ("frame_00.png", "frame_01.png"):
        shutil.copy(frames_dir / name, images / name)

    def recorded(*options: str) -> dict:
        out = tmp_path / f"f{len(list(tmp_path.glob('*.h5')))}.h5"
        assert main(["extract", str(images), "--out", str(out), "--specular", "none", *options]) == 0
        with storage.open_h5(out) as f:
            extraction = storage.read_settings(f)["extraction"]
            budget = max(len(storage.read_image_features(f, n).keypoints) for n in storage.leaf_groups(f, "keypoints"))
        assert budget <= extraction["max_num_keypoints"]
        return extraction

    realtime = get_preset("realtime")
    assert recorded()["max_num_keypoints"] == ExtractionSettings().max_num_keypoints  # accurate, the default
    chosen = recorded("--preset", "realtime")
    assert (chosen["max_num_keypoints"], chosen["resize"]) == (realtime.max_num_keypoints, realtime.resize)
    chosen = recorded("--preset", "realtime", "--max-keypoints", "100", "--resize", "0")
    assert (chosen["max_num_keypoints"], chosen["resize"]) == (100, None)
    assert ExtractionSettings.from_preset("realtime", max_num_keypoints=100).resize == realtime.resize
