"""Small end-to-end runs on the real photos: both loops, caches, reports."""

import json
import math

import pytest

from specglue.eval import homography, pose, rescore


@pytest.fixture(scope="module")
def homography_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("homography")
    # 2 photos (DSC_0410 / DSC_0411), 1 homography each, 256 keypoints; mnn without the ratio
    # test (ratio 1) is plain mutual nearest neighbour
    results = homography.run(data_dir / "01_lightglue_assets", num_homographies=1, max_images=2,
                             max_num_keypoints=256, methods=["specglue", "mnn"], mnn_ratio=1.0,
                             out_dir=out, seed=0)
    return out, results


def test_specglue_is_precise_and_beats_mutual_nn(homography_run):
    _, results = homography_run
    s = results["summary"]
    assert list(s) == ["specglue-off", "mnn"]
    assert s["specglue-off"]["num_pairs"] == 2
    assert s["specglue-off"]["prec@3px"] > 0.8
    assert s["mnn"]["prec@3px"] < s["specglue-off"]["prec@3px"]
    assert s["specglue-off"]["auc_ransac@5px"] > 0.5
    assert s["specglue-off"]["stop_hist"] is not None and s["mnn"]["stop_hist"] is None
    assert "| specglue-off |" in results["table"]


def test_outputs_written(homography_run):
    out, results = homography_run
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["num_homographies"] == 1 and data["config"]["max_num_keypoints"] == 256
    assert len(data["per_pair"]["mnn"]) == 2
    assert (out / "table.md").read_text() == results["table"]
    assert (out / "plots" / "homography.png").stat().st_size > 0
    assert (out / "predictions" / "specglue-off.h5").exists()


def test_rerun_resumes_and_rescore_does_not_match(homography_run, data_dir, monkeypatch):
    out, results = homography_run
    from specglue.eval import methods as methods_module

    def refuse(*args, **kwargs):
        raise AssertionError("matching ran again")

    monkeypatch.setattr(methods_module.SpecGlueMethod, "match", refuse)
    monkeypatch.setattr(methods_module.MutualNNMethod, "match", refuse)
    again = rescore(out)
    assert again["summary"]["specglue-off"]["prec@3px"] == results["summary"]["specglue-off"]["prec@3px"]
    resumed = homography.run(data_dir / "01_lightglue_assets", num_homographies=1, max_images=2,
                             max_num_keypoints=256, methods=["specglue", "mnn"], mnn_ratio=1.0,
                             out_dir=out, seed=0)
    assert resumed["summary"]["mnn"]["recall@3px"] == results["summary"]["mnn"]["recall@3px"]


def test_other_settings_refuse_the_cache(homography_run, data_dir):
    out, _ = homography_run
    with pytest.raises(ValueError, match="seed"):
        homography.run(data_dir / "01_lightglue_assets", num_homographies=1, max_images=2,
                       max_num_keypoints=256, methods=["mnn"], out_dir=out, seed=1)


def test_unknown_method_raises(data_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        homography.run(data_dir / "01_lightglue_assets", methods=["superglue"], out_dir=tmp_path, max_images=1)


def test_pose_on_one_scannet_pair(data_dir, tmp_path):
    src = data_dir / "03_superglue_scannet_pairs_gt"
    line = (src / "scannet_sample_pairs_with_gt.txt").read_text().splitlines()[0]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(line + "\n")
    results = pose.run(pairs, src / "images", max_num_keypoints=256, methods=["specglue"], resize=480,
                       out_dir=tmp_path / "out")
    s = results["summary"]["specglue-off"]
    assert s["num_pairs"] == 1 and s["num_matches"] > 20
    record = results["per_pair"]["specglue-off"][0]
    assert math.isfinite(record["pose_error"])
    assert (tmp_path / "out" / "plots" / "pose.png").exists()
