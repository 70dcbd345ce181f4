"""specglue.train.data: homography pairs with highlights, repeatable by index."""

from pathlib import Path

import numpy as np
import pytest
import torch

from specglue.geometry import warp_image
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


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="difficulty"):
        HomographyDataConf(difficulty=2.0)
    with pytest.raises(ValueError, match="placements"):
        HomographyDataConf(placements=("sideways",))
