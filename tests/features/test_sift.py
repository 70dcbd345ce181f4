"""SIFT (OpenCV): equality with the official LightGlue SIFT(backend="opencv") on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specglue.features import SIFT
from specglue.features.sift import filter_duplicates_and_nms, to_rootsift

from . import GLINT_FRAME, PARITY_PHOTOS, glint_mask, load_reference_module, read_rgb, to_tensor


@pytest.fixture(scope="module")
def reference_sift():
    return load_reference_module("sift")


class TestSIFTParity:
    @pytest.mark.parametrize("photo", PARITY_PHOTOS)
    @pytest.mark.parametrize("nms_radius", [0, 3])
    def test_equals_official(self, data_dir, reference_sift, photo, nms_radius):
        image = to_tensor(read_rgb(data_dir / photo))
        conf = {"max_num_keypoints": 1024, "nms_radius": nms_radius}
        ref = reference_sift.SIFT(backend="opencv", **conf).extract(image, resize=640)
        got = SIFT.official(resize=640, **conf).extract(image)
        n = ref["keypoints"].shape[1]
        assert n > 500 and got["keypoints"].shape == (1, n, 2)
        for key in ("keypoints", "keypoint_scores", "scales", "oris", "descriptors", "image_size"):
            assert torch.equal(got[key], ref[key].float()), key

    def test_official_conf_is_official(self, reference_sift):
        official = reference_sift.SIFT.default_conf
        ours = {**SIFT.default_conf, **SIFT.official_conf}
        for key in ("rootsift", "nms_radius", "max_num_keypoints", "detection_threshold",
                    "edge_threshold"):
            assert ours[key] == official[key], key
        assert ours["num_octave_layers"] == official["num_octaves"]
        assert ours["resize"] == reference_sift.SIFT.preprocess_conf["resize"] and ours["upsample"]


class TestSIFTBehaviour:
    @pytest.mark.parametrize("budget", [50, 300, 2000])
    def test_budget_descriptors_scales_oris(self, data_dir, budget):
        image = read_rgb(data_dir / PARITY_PHOTOS[1], 640)
        feats = SIFT(max_num_keypoints=budget, resize=None).extract(image)
        n = feats["keypoints"].shape[1]
        # at most the budget; OpenCV counts one keypoint per orientation before the
        # same-pixel duplicates are merged, so (as official) somewhat fewer remain
        assert 0.5 * budget <= n <= budget
        desc = feats["descriptors"][0]
        assert desc.shape == (n, 128) and bool((desc >= 0).all())
        assert torch.allclose(desc.norm(dim=-1), torch.ones(n), atol=1e-5)
        scales, oris = feats["scales"][0], feats["oris"][0]
        assert bool((scales > 1.0).all())  # OpenCV size: a diameter in px
        assert bool((oris >= 0).all()) and bool((oris < 2 * np.pi + 1e-6).all())
        assert float(oris.max()) > np.pi  # radians in [0, 2*pi), not wrapped to (-pi, pi]

    def test_rootsift_hand_worked(self):
        raw = torch.tensor([[4.0, 0.0, 12.0] + [0.0] * 125])
        expected = torch.zeros(1, 128).fill_(1e-3)  # sqrt of the 1e-6 clip
        expected[0, 0], expected[0, 2] = 0.5, 0.75 ** 0.5
        expected = expected / expected.norm()
        assert torch.allclose(to_rootsift(raw), expected, atol=1e-6)

    def test_duplicate_filter_hand_worked(self):
        points = np.array([[10.2, 5.1], [10.4, 5.3], [10.3, 5.2], [30.0, 20.0]], np.float32)
        scores = np.array([1.0, 2.0, 2.0, 0.5], np.float32)
        oris = np.array([0.1, 3.0, 1.0, 0.0], np.float32)
        # the first three share a pixel: best score (1, 2), then smallest |ori| (2)
        assert filter_duplicates_and_nms(points, scores, oris, (40, 40), 0).tolist() == [2, 3]
        assert filter_duplicates_and_nms(points, scores, oris, (40, 40), 30).tolist() == [2]

    def test_specular_mask_drops_only_masked(self, data_dir):
        image = read_rgb(data_dir / GLINT_FRAME)
        mask = glint_mask(image)
        extractor = SIFT(resize=None)
        full = extractor.extract(image)
        masked = extractor.extract(image, specular_mask=mask)
        kp = full["keypoints"][0]
        inside = torch.from_numpy(mask)[kp[:, 1].round().long(), kp[:, 0].round().long()]
        assert int(inside.sum()) > 0
        for key in ("keypoints", "descriptors", "scales", "oris", "keypoint_scores"):
            assert torch.equal(masked[key][0], full[key][0][~inside]), key

    def test_batch_pads(self, data_dir):
        frames = [read_rgb(data_dir / GLINT_FRAME.replace("00", f"{i:02d}")) for i in (0, 11)]
        extractor = SIFT(resize=None)
        both = extractor.extract(torch.stack([to_tensor(f) for f in frames]))
        counts = both["keypoint_mask"].sum(1).tolist()
        assert counts[0] != counts[1]
        for i, frame in enumerate(frames):
            single = extractor.extract(frame)
            for key in ("keypoints", "descriptors", "scales", "oris"):
                assert torch.equal(both[key][i, : counts[i]], single[key][0]), key
                assert bool((both[key][i, counts[i]:] == 0).all()), key

    def test_blank_image_gives_empty_features(self):
        feats = SIFT(resize=None).extract(np.full((60, 80, 3), 128, np.uint8))
        assert feats["keypoints"].shape == (1, 0, 2)
        assert feats["descriptors"].shape == (1, 0, 128)
        assert feats["scales"].shape == (1, 0) and feats["oris"].shape == (1, 0)
