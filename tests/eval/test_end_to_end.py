"""Small end-to-end runs on the real photos: both loops, caches, reports, every benchmark."""

import json
import math
import re

import numpy as np
import pytest
import torch

from specglue import eval as sg_eval
from specglue.eval.cache import PairFeaturesFile
from specglue.eval.methods.rotations import rot90_view


@pytest.fixture(scope="module")
def homography_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("homography")
    # 2 photos (DSC_0410 / DSC_0411), 1 homography each, 256 keypoints; mnn without the ratio
    # test (ratio 1) is plain mutual nearest neighbour
    results = sg_eval.run("homography", images_dir=data_dir / "01_lightglue_assets", num_homographies=1,
                          max_images=2, max_num_keypoints=256, methods=["specglue", "mnn"], mnn_ratio=1.0,
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
    assert data["benchmark"] == "homography"
    assert data["config"]["num_homographies"] == 1 and data["config"]["max_num_keypoints"] == 256
    assert [m["n_layers"] for m in data["methods"]] == [9, 0]
    assert len(data["per_pair"]["mnn"]) == 2
    assert (out / "table.md").read_text() == results["table"]
    assert (out / "plots" / "homography.png").stat().st_size > 0
    assert (out / "predictions" / "specglue-off.h5").exists()


def test_rerun_resumes_and_rescore_does_not_match(homography_run, data_dir, monkeypatch):
    out, results = homography_run
    from specglue.eval.methods import mnn, specglue

    def refuse(*args, **kwargs):
        raise AssertionError("matching ran again")

    monkeypatch.setattr(specglue.SpecGlueMethod, "match", refuse)
    monkeypatch.setattr(mnn.MutualNNMethod, "match", refuse)
    before = json.loads((out / "results.json").read_text())
    again = sg_eval.rescore(out)
    assert json.loads((out / "results.json").read_text())["summary"] == before["summary"]
    assert again["table"] == results["table"]
    resumed = sg_eval.run("homography", images_dir=data_dir / "01_lightglue_assets", num_homographies=1,
                          max_images=2, max_num_keypoints=256, methods=["specglue", "mnn"], mnn_ratio=1.0,
                          out_dir=out, seed=0)
    assert resumed["summary"]["mnn"]["recall@3px"] == results["summary"]["mnn"]["recall@3px"]


def test_other_settings_refuse_the_cache(homography_run, data_dir):
    out, _ = homography_run
    with pytest.raises(ValueError, match="seed"):
        sg_eval.run("homography", images_dir=data_dir / "01_lightglue_assets", num_homographies=1, max_images=2,
                    max_num_keypoints=256, methods=["mnn"], out_dir=out, seed=1)


def test_unknown_names_raise(data_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        sg_eval.run("homography", images_dir=data_dir / "01_lightglue_assets", methods=["superglue"],
                    out_dir=tmp_path, max_images=1)
    with pytest.raises(ValueError, match="unknown benchmark"):
        sg_eval.run("megadepth")
    with pytest.raises(TypeError, match="num_homographies"):
        sg_eval.run("pose", pairs_file=tmp_path / "p.txt", num_homographies=2)


def test_stop_histogram_follows_the_model_depth(data_dir, tmp_path):
    # a 5-layer model (the first 5 official layers): 5 bins, not 9
    from specglue import weights

    state = weights.load_state_dict(weights.resolve("aliked_lightglue"))
    layer = re.compile(r"^(self_attn|cross_attn|transformers|log_assignment|token_confidence)\.(\d+)\.")
    depth = {"token_confidence": 4}  # one confidence head between each two layers

    def keep(key):
        m = layer.match(key)
        return m is None or int(m.group(2)) < depth.get(m.group(1), 5)

    kept = {k: v for k, v in state.items() if keep(k)}
    torch.save(kept, tmp_path / "five_layers.pth")
    results = sg_eval.run("homography", images_dir=data_dir / "01_lightglue_assets", num_homographies=1,
                          max_images=1, max_num_keypoints=128, methods=["specglue-off"], out_dir=tmp_path / "out",
                          lightglue_conf={"n_layers": 5, "weights": str(tmp_path / "five_layers.pth")})
    summary = results["summary"]["specglue-off"]
    assert results["methods"][0]["n_layers"] == 5
    assert len(summary["stop_hist"]) == 5 and sum(summary["stop_hist"]) == 1


def test_pose_on_one_scannet_pair(data_dir, tmp_path):
    src = data_dir / "03_superglue_scannet_pairs_gt"
    line = (src / "scannet_sample_pairs_with_gt.txt").read_text().splitlines()[0]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(line + "\n")
    results = sg_eval.run("pose", pairs_file=pairs, images_dir=src / "images", max_num_keypoints=256,
                          methods=["specglue"], resize=480, out_dir=tmp_path / "out")
    s = results["summary"]["specglue-off"]
    assert s["num_pairs"] == 1 and s["num_matches"] > 20
    record = results["per_pair"]["specglue-off"][0]
    assert math.isfinite(record["pose_error"])
    assert (tmp_path / "out" / "plots" / "pose.png").exists()
    assert sg_eval.rescore(tmp_path / "out")["table"] == results["table"]


def test_specular_modes_on_synthetic_glare(data_dir, tmp_path):
    results = sg_eval.run("hpatches", root=data_dir / "06_oxford_graffiti_homography", specular="camera_fixed",
                          max_num_keypoints=256, methods=["specglue"], out_dir=tmp_path)
    s = results["summary"]
    assert list(s) == [f"specglue-{m}" for m in ("off", "hard", "cross", "soft", "filter")]
    assert s["specglue-hard"]["specular_match_share"] == 0.0  # hard masking leaves no match on glare
    assert s["specglue-off"]["specular_match_share"] > 0.0
    assert "% on glare" in results["table"]
    # the 800x640 photos went to the extractor as stored; keypoints and H are scored in the
    # 640x512 pixels the network saw (keypoints left in stored pixels would miss by ~20 %)
    assert results["config"]["extractor"]["resize"] == 640
    assert s["specglue-off"]["prec@3px"] > 0.5, s["specglue-off"]["prec@3px"]


def test_rot90_view_maps_back_to_image1():
    image = torch.rand(3, 5, 8)
    mask = np.zeros((5, 8), bool)
    mask[1, 6] = True
    for k in (1, 2, 3):
        turned, turned_mask, turned_roi, to_image1 = rot90_view(k)(image, mask, ~mask)
        assert np.array_equal(turned_roi, ~turned_mask)
        y, x = np.argwhere(turned_mask)[0]
        back = to_image1 @ [x, y, 1.0]
        assert np.allclose(back[:2] / back[2], [6, 1])
        assert torch.equal(turned[:, y, x], image[:, 1, 6])


@pytest.fixture(scope="module")
def rotation_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rotation")
    results = sg_eval.run("rotation", images_dir=data_dir / "02_hloc_sacre_coeur" / "mapping", max_images=1,
                          max_num_keypoints=256, methods=["reference", "reference-rot4", "specglue-rot2"],
                          out_dir=out)
    return out, results


def test_rotation_benchmark_bins(rotation_run):
    out, results = rotation_run
    records = results["per_pair"]["reference"]
    assert len(records) == 6
    for r in records:  # one pair per 30-degree bin, the angle inside its bin
        assert 30 * r["bin"] <= abs(r["angle_deg"]) < 30 * (r["bin"] + 1)
    assert results["table"].splitlines()[0].startswith("| method | 0–30° | 30–60° |")
    assert (out / "plots" / "rotation.png").stat().st_size > 0


def test_best_of_four_rotations_rescues_large_angles(rotation_run):
    out, results = rotation_run
    s = results["summary"]
    large = ["60-90deg", "90-120deg", "120-150deg", "150-180deg"]
    official = np.mean([s["reference"][f"auc_ransac@3px[{b}]"] for b in large])
    best_of_4 = np.mean([s["reference-rot4"][f"auc_ransac@3px[{b}]"] for b in large])
    assert official < 0.2 < 0.5 < best_of_4
    assert s["reference-rot4"]["auc_ransac@3px[0-30deg]"] == s["reference"]["auc_ransac@3px[0-30deg]"]
    # near a quarter turn, the chosen view is the one that turns image 1 back upright
    for r in results["per_pair"]["reference-rot4"]:
        turns = -r["angle_deg"] / 90
        if abs(turns - round(turns)) < 0.25:
            k = round(turns) % 4
            assert r["view"] == (f"rot{90 * k}" if k else ""), (r["angle_deg"], r["view"])
    # the 2-call option: image 1 and its half turn, which rescues the last bin
    for r in results["per_pair"]["specglue-rot2"]:
        assert r["view"] == ("rot180" if abs(r["angle_deg"]) >= 150 else "" if abs(r["angle_deg"]) < 60
                             else r["view"]), (r["angle_deg"], r["view"])
    assert s["specglue-rot2"]["auc_ransac@3px[150-180deg]"] > 0.5 > s["reference"]["auc_ransac@3px[150-180deg]"]
    # the three views of image 1 are in the feature cache, keypoints in the view's own frame
    pair = PairFeaturesFile(out / "features.h5").read(results["per_pair"]["reference"][3]["pair"])
    assert set(pair.views) == {"rot90", "rot180", "rot270"}
    w, h = pair.image1.image_size
    assert tuple(pair.views["rot90"].image_size) == (h, w)
