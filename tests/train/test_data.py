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
