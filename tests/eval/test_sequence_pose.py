"""The sequence-pose benchmark on the real sinus sequence: pairs, ground truth, both loops,
the region of interest, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from specglue import eval as sg_eval
from specglue.cli import main
from specglue.eval.benchmarks.sequence_pose import prepare, sequence_pairs
from specglue.eval.cache import PairFeaturesFile
from specglue.eval.runner import RunOptions
from specglue.features import build_extractor
from specglue.features.roi import estimate_roi, resolve_roi
from specglue.images import load_image
from specglue.pipeline import extract_view
from specglue.geometry.poses import read_endoscopy_sfm_poses

from ..geometry.test_poses import SINUS, _write_colmap_model


def test_sequence_pairs():
    assert sequence_pairs(5, [1, 3]) == [(0, 1, 1), (1, 2, 1), (2, 3, 1), (3, 4, 1), (0, 3, 3), (1, 4, 3)]
    assert sequence_pairs(5, [2, 9]) == [(0, 2, 2), (1, 3, 2), (2, 4, 2)]  # gap 9: none, a warning
    with pytest.raises(ValueError, match="no pair"):
        sequence_pairs(5, [5])
    with pytest.raises(ValueError, match="gaps must be >= 1"):
        sequence_pairs(5, [0])


@pytest.fixture(scope="module")
def sinus_run(data_dir, tmp_path_factory):
    """Gaps 20 and 30 (15 + 5 pairs) at 320 px, 512 keypoints, the estimated field of view and
    detected highlights."""
    out = tmp_path_factory.mktemp("sequence_pose")
    sinus = data_dir / SINUS
    results = sg_eval.run("sequence-pose", images_dir=sinus, gt=sinus, gaps=[20, 30], roi="auto",
                          resize=320, max_num_keypoints=512, out_dir=out,
                          methods=["specglue-off", "specglue-hard", "mnn"])
    return out, results


def test_sinus_poses_are_recovered(sinus_run):
    _, results = sinus_run
    s = results["summary"]
    assert list(s) == ["specglue-off", "specglue-hard", "mnn"]
    off = s["specglue-off"]
    assert off["num_pairs"] == 20 and off["num_pairs_gap20"] == 15 and off["num_pairs_gap30"] == 5
    assert off["gaps"] == [20, 30]
    # frames 320x180 px, 3.8 degrees and 12 % of the depth apart at gap 20: LightGlue recovers
    # most poses within 20 degrees (seen: median 18 degrees, AUC@20 27 %), mutual NN does not
    # (13 matches per pair, AUC@20 9 %)
    assert off["median_pose_error"] < 25
    assert off["auc@20deg"] > s["mnn"]["auc@20deg"] + 0.1
    assert off["num_matches"] > 5 * s["mnn"]["num_matches"]
    for key in ("auc@5deg_gap20", "auc@10deg_gap30"):
        assert 0 <= off[key] <= 1
    assert s["specglue-hard"]["specular_match_share"] == 0
    assert "gap 20" in results["table"] and "median error" in results["table"]


def test_keypoints_stay_in_the_field_of_view(sinus_run, data_dir):
    out, _ = sinus_run
    import cv2

    truth = cv2.imread(str(data_dir / SINUS / "undistorted_mask.bmp"), cv2.IMREAD_GRAYSCALE) > 0
    cache = PairFeaturesFile(out / "features.h5")
    for name in cache.names()[:6]:
        pair = cache.read(name)
        for side in (pair.image0, pair.image1):
            assert tuple(side.image_size) == (1920, 1080)  # keypoints in the stored pixels
            xy = np.round(side.keypoints).astype(int)
            assert truth[xy[:, 1], xy[:, 0]].all()


def test_frames_are_extracted_as_match_pair_extracts_them(sinus_run, data_dir):
    """One preprocessing path: the benchmark's features of a frame are those of the pipeline's
    extraction (the extractor shrinks the stored frame itself, inside the same region)."""
    out, results = sinus_run
    sinus = data_dir / SINUS
    pair = PairFeaturesFile(out / "features.h5").read(PairFeaturesFile(out / "features.h5").names()[0])
    frames = [sinus / n for n in read_endoscopy_sfm_poses(sinus).names]
    rgb = load_image(sinus / pair.info["image0"])
    region = resolve_roi("auto", frames, rgb.shape[:2])
    extractor = build_extractor("aliked", **results["config"]["extractor"]).eval()
    view = extract_view(extractor, "frame", rgb, None, region, "cpu")
    assert results["config"]["extractor"]["resize"] == 320
    np.testing.assert_allclose(pair.image0.keypoints, view["keypoints"][0].numpy(), atol=1e-3)
    np.testing.assert_allclose(pair.image0.descriptors, view["descriptors"][0].numpy(), atol=1e-4)


def test_rescore_reproduces_the_numbers(sinus_run):
    out, results = sinus_run
    again = sg_eval.rescore(out)
    for method, summary in results["summary"].items():
        assert again["summary"][method]["auc@10deg"] == summary["auc@10deg"]
    assert json.loads((out / "results.json").read_text())["config"]["roi"] == "auto"


def test_colmap_ground_truth_gives_the_same_pairs(tmp_path, data_dir):
    """The ground truth as a COLMAP model (written by pycolmap) defines the same pairs and poses."""
    sinus = data_dir / SINUS
    truth = read_endoscopy_sfm_poses(sinus)
    _write_colmap_model(tmp_path / "sparse", truth.K, truth.T_cam_from_world)
    options = RunOptions(resize=320)
    from_yaml = prepare(options, sinus, sinus, gaps=[20], highlights="none")
    from_colmap = prepare(options, sinus, tmp_path, gaps=[20], highlights="none")
    assert [n for n, _ in from_yaml.builders] == [n for n, _ in from_colmap.builders]
    a, b = from_yaml.builders[3][1](), from_colmap.builders[3][1]()
    for key in ("K0", "K1", "T_0to1", "A0", "A1", "px_scale"):
        np.testing.assert_allclose(a.gt[key], b.gt[key], atol=1e-9)
    assert a.info == b.info == {"image0": "00004587.jpg", "image1": "00004607.jpg", "gap": 20}


def test_a_frame_range_keeps_training_frames_out(data_dir):
    """``frames=(first, last)``: only pairs inside the range (the frames of the endoscopy
    fine-tune, 00004584-00004593, stay out of its evaluation)."""
    sinus = data_dir / SINUS
    plan = prepare(RunOptions(resize=320), sinus, sinus, gaps=[5, 10, 20], highlights="none",
                   frames=("00004594.jpg", "00004618.jpg"))
    names = [n for n, _ in plan.builders]
    assert len(names) == 20 + 15 + 5 and names[0] == "00004594--00004599" and names[-1] == "00004598--00004618"
    assert plan.settings["frames"] == ["00004594.jpg", "00004618.jpg"] and "frames_00004594_00004618" in plan.out_name
    everything = prepare(RunOptions(resize=320), sinus, sinus, gaps=[5], highlights="none")
    assert len(everything.builders) == 30 and "frames_" not in everything.out_name
    assert "frames" not in everything.settings  # earlier runs over every frame keep their caches
    with pytest.raises(ValueError, match="frames: '00009999.jpg' is not a frame of the sequence"):
        prepare(RunOptions(), sinus, sinus, frames=("00004594.jpg", "00009999.jpg"))
    with pytest.raises(ValueError, match="comes before the first"):
        prepare(RunOptions(), sinus, sinus, frames=("00004600.jpg", "00004590.jpg"))
    with pytest.raises(ValueError, match=r"frames must be \(first, last\)"):
        prepare(RunOptions(), sinus, sinus, frames=("00004600.jpg",))


def _run_cli(args, capsys) -> tuple:
    code = main(["eval", "sequence-pose", *map(str, args)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, data_dir, capsys):
    sinus = data_dir / SINUS
    truth = read_endoscopy_sfm_poses(sinus)
    out = tmp_path / "out"

    # the ground truth names frames the folder lacks
    some = tmp_path / "some_frames"
    some.mkdir()
    for name in truth.names[:20]:
        (some / name).symlink_to(sinus / name)
    code, err = _run_cli([some, "--gt", sinus, "--out-dir", out], capsys)
    assert code == 1 and len(err) == 1 and "names 15 frames that are not in" in err[0] and "00004604.jpg" in err[0]

    # a COLMAP model without a frame inside the sequence
    K = {n: k for n, k in truth.K.items() if n != "00004590.jpg"}
    T = {n: t for n, t in truth.T_cam_from_world.items() if n != "00004590.jpg"}
    _write_colmap_model(tmp_path / "model", K, T)
    code, err = _run_cli([sinus, "--gt", tmp_path / "model", "--out-dir", out], capsys)
    assert code == 1 and len(err) == 1 and "has no pose for 1 frames" in err[0] and "00004590.jpg" in err[0]

    # a field-of-view mask of the wrong size
    import cv2

    cv2.imwrite(str(tmp_path / "mask.png"), np.full((540, 960), 255, np.uint8))
    code, err = _run_cli([sinus, "--gt", sinus, "--roi", tmp_path / "mask.png", "--out-dir", out], capsys)
    assert code == 1 and len(err) == 1 and "mask.png" in err[0] and "1080x1920" in err[0]

    # a ground-truth folder that is neither layout
    code, err = _run_cli([sinus, "--gt", tmp_path / "some_frames", "--out-dir", out], capsys)
    assert code == 1 and len(err) == 1 and "holds no COLMAP model" in err[0]
    assert not out.exists()


def test_estimated_view_matches_the_dataset_mask(data_dir):
    """The field of view the benchmark estimates (as ``--roi auto``) is the dataset's own mask."""
    import cv2

    sinus = data_dir / SINUS
    truth = cv2.imread(str(sinus / "undistorted_mask.bmp"), cv2.IMREAD_GRAYSCALE) > 0
    frames = [cv2.imread(str(sinus / n))[:, :, ::-1] for n in read_endoscopy_sfm_poses(sinus).names[::7]]
    view = estimate_roi(frames)
    iou = (view & truth).sum() / (view | truth).sum()
    assert iou >= 0.95, f"IoU {iou:.3f}"
    assert not math.isnan(iou)
