"""SuperPoint: the MagicLeap layout, loaded from a user file (random weights here)."""

from __future__ import annotations

import pytest
import torch

from specglue.features import SuperPoint, SuperPointNet, build_extractor
from specglue.features.superpoint import sample_descriptors

from . import GLINT_FRAME, read_rgb, to_tensor

OFFICIAL_KEYS = [
    f"{layer}.{p}"
    for layer in ["conv1a", "conv1b", "conv2a", "conv2b", "conv3a", "conv3b", "conv4a",
                  "conv4b", "convPa", "convPb", "convDa", "convDb"]
    for p in ("weight", "bias")
]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("superpoint") / "superpoint_random.pth"
    torch.save(SuperPointNet().state_dict(), path)
    return path


class TestSuperPoint:
    def test_state_dict_keys_are_official(self):
        state = SuperPointNet().state_dict()
        assert sorted(state) == sorted(OFFICIAL_KEYS)
        assert state["convPb.weight"].shape == (65, 256, 1, 1)
        assert state["convDb.weight"].shape == (256, 256, 1, 1)
        assert state["conv1a.weight"].shape == (64, 1, 3, 3)

    def test_contract_on_real_frame(self, data_dir, weights_file):
        image = read_rgb(data_dir / GLINT_FRAME)
        extractor = build_extractor("superpoint", weights=str(weights_file),
                                    max_num_keypoints=256, resize=None)
        feats = extractor.extract(image)
        assert feats["keypoints"].shape == (1, 256, 2)
        assert feats["descriptors"].shape == (1, 256, 256)
        assert feats["keypoint_scores"].shape == (1, 256)
        assert feats["image_size"].tolist() == [[320.0, 240.0]]
        assert feats["keypoints"].dtype == torch.float32
        kp = feats["keypoints"][0]
        assert torch.equal(kp, kp.round())  # integer pixels
        assert bool((kp >= 4).all())  # remove_borders=4
        assert bool((kp[:, 0] < 316).all()) and bool((kp[:, 1] < 236).all())
        norms = feats["descriptors"][0].norm(dim=-1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
        assert bool((feats["keypoint_scores"] > 0.0005).all())
        # grey input; a batch of the same image twice gives two identical rows
        grey = to_tensor(image).mul(torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0)
        batch = extractor.extract(torch.stack([grey[None], grey[None]]))
        assert batch["keypoints"].shape == (2, 256, 2)
        assert torch.equal(batch["keypoints"][0], batch["keypoints"][1])
        assert torch.allclose(batch["descriptors"][0], batch["descriptors"][1], atol=1e-5)
        assert batch["keypoint_mask"].all()

    def test_descriptor_at_first_cell_centre(self):
        coarse = torch.randn(4, 3, 5)
        # pixel 3.5 is the centre of the first 8x8 cell: its descriptor, exactly
        got = sample_descriptors(torch.tensor([[3.5, 3.5]]), coarse)
        assert torch.allclose(got[0], torch.nn.functional.normalize(coarse[:, 0, 0], dim=0))

    def test_missing_weights_explain_how_to_pass_them(self):
        with pytest.raises(ValueError, match=r"weights='/path/to/superpoint_v1.pth'"):
            SuperPoint()

    def test_wrong_checkpoint(self, tmp_path):
        bad = tmp_path / "bad.pth"
        torch.save({"conv1a.weight": torch.zeros(3)}, bad)
        with pytest.raises(ValueError, match="does not fit SuperPoint"):
            SuperPoint(weights=bad)
        with pytest.raises(FileNotFoundError):
            SuperPoint(weights=tmp_path / "missing.pth")
