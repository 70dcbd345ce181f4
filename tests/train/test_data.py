"""specglue.train.data: homography pairs with highlights, repeatable by index."""

from pathlib import Path

import numpy as np
import pytest
import torch

from specglue.geometry import warp_image
from specglue.train.batches import BatchBuilder
from specglue.train.data import HomographyDataConf, HomographyPairs

pytestmark = pytest.mark.slow


@pytest.fixture
def dataset(data_dir: Path) -> HomographyPairs:
    return HomographyPairs(data_dir / "10_laparoscopic_cholecystectomy_sequence_rvim" / "frames",
                           HomographyDataConf(specular_probability=1.0, photometric=False), length=8)


def test_items_are_repeatable_and_differ_by_index(dataset):
    a, b, c = dataset[3], dataset[3], dataset[4]
    for key in ("image0", "image1", "H_0to1", "specular_mask0"):
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["H_0to1"], c["H_0to1"])
    assert a["image0"].shape == (3, 240, 320) and a["specular_mask1"].shape == (240, 320)


def test_the_warp_is_the_homography_and_highlights_come_with_masks(dataset):
    conf = HomographyDataConf(specular_probability=0.0, photometric=False)
    clean = HomographyPairs(dataset.files, conf, length=8)[2]
    warped = warp_image(clean["image0"].numpy().transpose(1, 2, 0), clean["H_0to1"].numpy().astype(np.float64))
    np.testing.assert_allclose(clean["image1"].numpy().transpose(1, 2, 0), warped, atol=1e-5)
    assert not clean["specular_mask0"].any()
    glare = dataset[2]
    assert glare["specular_mask0"].any() and glare["specular_mask1"].any()
    inside = glare["specular_mask1"]
    assert glare["image1"][:, inside].mean() > clean["image1"][:, inside].mean()  # highlights brighten


def test_an_endoscope_field_of_view_stays_put_and_bounds_the_keypoints(data_dir):
    """Sinus frames: the warped view is cut to the same circular view (the rim is camera-fixed),
    both views carry it as roi, and the training features lie inside it; photos get none."""
    sinus = data_dir / "13_sinus_endoscopy_sfm_poses"
    conf = HomographyDataConf(specular_probability=0.0, photometric=False, field_of_view="auto")
    item = HomographyPairs([sinus / "00004584.jpg"], conf, length=2)[1]
    view = item["roi0"]
    assert torch.equal(view, item["roi1"]) and 0.4 < view.float().mean() < 0.95
    assert item["image1"][:, ~view].abs().max() == 0  # black outside the view
    assert item["image1"][:, view].mean() > 0.1
    photo = HomographyPairs([data_dir / "01_lightglue_assets" / "sacre_coeur1.jpg"], conf, length=1)[0]
    assert "roi0" not in photo
    # photometric changes and highlights stay inside the view too
    glare = HomographyDataConf(specular_probability=1.0, photometric=True, field_of_view="auto")
    lit = HomographyPairs([sinus / "00004584.jpg"], glare, length=2)[1]
    for k in (0, 1):
        assert lit[f"image{k}"][:, ~view].abs().max() == 0
        assert lit[f"specular_mask{k}"].any() and not lit[f"specular_mask{k}"][~view].any()

    builder = BatchBuilder(HomographyPairs([sinus / "00004584.jpg"], conf, length=2), "aliked",
                           {"max_num_keypoints": 256, "detection_threshold": 0.0})
    for k, keypoints in enumerate(v["keypoints"][0] for v in builder.entry(1)["views"]):
        x, y = keypoints.round().long().unbind(-1)
        assert len(keypoints) > 100 and bool(item[f"roi{k}"][y, x].all())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="field_of_view"):
        HomographyDataConf(field_of_view="circle")
    with pytest.raises(ValueError, match="difficulty"):
        HomographyDataConf(difficulty=2.0)
    with pytest.raises(ValueError, match="placements"):
        HomographyDataConf(placements=("sideways",))


def test_track_depth_interpolates_a_plane_inside_the_hull_only():
    """Points on a tilted plane: the interpolated depth is the plane's inside their convex hull
    (linear interpolation is exact on a plane) and 0 (unknown) outside it."""
    from specglue.train.data import track_depth

    K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])
    rng = np.random.default_rng(0)
    uv = rng.uniform([40, 30], [120, 90], size=(40, 2))
    z = 5.0 + 0.01 * uv[:, 0]  # the plane z = 5 + 0.01 u, sampled along its rays
    points = np.c_[(uv - K[:2, 2]) / 100.0, np.ones(len(uv))] * z[:, None]
    depth = track_depth(points, K, np.eye(4), (120, 160))
    assert depth.shape == (120, 160) and depth.dtype == np.float32
    np.testing.assert_allclose(depth[60, 80], 5.8, rtol=1e-5)
    assert depth[5, 5] == 0 and depth[115, 155] == 0
    assert track_depth(points[:2], K, np.eye(4), (120, 160)).max() == 0  # no triangle: nothing known


def test_sinus_tracks_are_the_ground_truth_of_the_real_pairs(data_dir):
    """The structure-from-motion sequence as a depth scene: only the named frames, pairs at most
    sfm_max_gap apart, the field of view; keypoints put on the track points two frames share are
    labelled as each other's matches."""
    from specglue.geometry import gt_matches_batch_from_depth
    from specglue.geometry.poses import read_endoscopy_sfm_points, read_endoscopy_sfm_poses
    from specglue.train.data import DepthDataConf, DepthPairs

    sinus = data_dir / "13_sinus_endoscopy_sfm_poses"
    conf = DepthDataConf(resize=0, photometric=False, specular_probability=0.0,
                         sfm_frames=("00004584.jpg", "00004589.jpg"), sfm_max_gap=2)
    dataset = DepthPairs.from_scenes([sinus], conf)
    names = sorted({n for pair in dataset.pairs for n in pair[1:]})
    assert names == [f"{k:08d}.jpg" for k in range(4584, 4590)]
    assert len(dataset.pairs) == 5 + 4  # gaps 1 and 2
    item = dataset[dataset.pairs.index((sinus, "00004586.jpg", "00004588.jpg"))]
    assert 0.3 < item["roi0"].float().mean() < 0.6
    known = item["depth0"] > 0
    assert 0.03 < known.float().mean() < 0.3 and bool(item["roi0"][known].float().mean() > 0.99)

    poses = read_endoscopy_sfm_poses(sinus)
    points, views = read_endoscopy_sfm_points(sinus)
    shared = np.array([4586 in v and 4588 in v for v in views])
    keypoints = []
    for name in ("00004586.jpg", "00004588.jpg"):
        T, K = poses.T_cam_from_world[name], poses.K[name]
        uvw = (points[shared] @ T[:3, :3].T + T[:3, 3]) @ K.T
        keypoints.append(torch.from_numpy(uvw[:, :2] / uvw[:, 2:])[None].float())
    order = torch.randperm(int(shared.sum()), generator=torch.Generator().manual_seed(0))
    gt = gt_matches_batch_from_depth(keypoints[0], keypoints[1][:, order], item["depth0"][None], item["depth1"][None],
                                     item["K0"][None], item["K1"][None], item["T_0to1"][None])
    matched = gt["matches0"][0] >= 0
    assert shared.sum() > 80 and matched.float().mean() > 0.9
    assert torch.equal(order[gt["matches0"][0][matched]], torch.arange(len(order))[matched])


def test_mixed_items_are_decided_by_index(data_dir):
    from specglue.train.data import DepthDataConf, DepthPairs, MixedPairs

    sinus = data_dir / "13_sinus_endoscopy_sfm_poses"
    homography = HomographyPairs([sinus / "00004584.jpg"], HomographyDataConf(photometric=False), length=40)
    depth = DepthPairs.from_scenes([sinus], DepthDataConf(resize=320, sfm_frames=("00004584.jpg", "00004586.jpg")))
    mixed = MixedPairs(homography, depth, 0.5, length=40)
    kinds = [mixed.is_depth(i) for i in range(40)]
    assert kinds == [MixedPairs(homography, depth, 0.5, length=40).is_depth(i) for i in range(40)]
    assert 10 < sum(kinds) < 30
    first_depth, first_homography = kinds.index(True), kinds.index(False)
    assert "T_0to1" in mixed[first_depth] and "H_0to1" in mixed[first_homography]
    assert not any(MixedPairs(homography, depth, 0.0, length=40).is_depth(i) for i in range(40))
    with pytest.raises(ValueError, match="depth_share"):
        MixedPairs(homography, depth, 1.5, length=4)
    with pytest.raises(ValueError, match="sfm_frames"):
        DepthDataConf(sfm_frames=("00004584.jpg",))
