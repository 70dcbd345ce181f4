"""ALIKED: parity with the official LightGlue ALIKED and with kornia's, on real photos."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from specglue.eval.methods.official import load_reference_aliked
from specglue.features import ALIKED, build_extractor

from . import (
    GLINT_FRAME,
    PARITY_PHOTOS,
    glint_mask,
    nearest,
    read_rgb,
    to_tensor,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def official_aliked():
    if "torchvision" in sys.modules:
        pytest.fail("torchvision must not be imported in the specglue test session")
    official = load_reference_aliked()
    assert official is not None and "torchvision" not in sys.modules  # the stand-in is gone again
    return official(model_name="aliked-n16").eval()  # official default_conf


@pytest.fixture(scope="module")
def ours() -> ALIKED:
    return ALIKED.official(resize=640)  # official behaviour (upsampling, no keypoint floor)


class TestALIKEDParity:
    @pytest.mark.parametrize("photo", PARITY_PHOTOS)
    def test_equals_official(self, data_dir, ours, official_aliked, photo, device):
        # full-resolution photo, both resized to 640 px by extract(): covers the resize mapping
        image = to_tensor(read_rgb(data_dir / photo)).to(device)
        try:
            with torch.no_grad():
                ref = official_aliked.to(device).extract(image, resize=640)
            got = ours.to(device).extract(image)
        finally:  # the module's other tests run on the CPU
            official_aliked.cpu(), ours.cpu()
        ref, got = ({k: v.cpu() for k, v in out.items()} for out in (ref, got))
        ref_kp, got_kp = ref["keypoints"][0], got["keypoints"][0]
        assert len(ref_kp) > 500
        assert got["keypoints"].shape == (1, len(ref_kp), 2)
        assert torch.equal(got["image_size"], ref["image_size"])
        dist, idx = nearest(got_kp, ref_kp)
        back, _ = nearest(ref_kp, got_kp)
        assert float(dist.max()) < 0.5 and float(back.max()) < 0.5
        assert len(torch.unique(idx)) == len(ref_kp)  # one-to-one
        desc_diff = (got["descriptors"][0] - ref["descriptors"][0][idx]).abs().max()
        score_diff = (got["keypoint_scores"][0] - ref["keypoint_scores"][0][idx]).abs().max()
        assert float(desc_diff) < 1e-3
        assert float(score_diff) < 1e-4
        # the measured agreement, shown by pytest -s / -rA
        print(f"ALIKED vs official {photo}: n={len(ref_kp)} max kp dist={float(dist.max()):.2e}"
              f" px, max desc diff={float(desc_diff):.2e}, max score diff={float(score_diff):.2e}")

    def test_contains_kornia_keypoints(self, data_dir, ours):
        """kornia keeps strict maxima only: its keypoints are a subset of ours (same net)."""
        from kornia.feature.aliked import ALIKED as KorniaALIKED

        kornia_net = KorniaALIKED("aliked-n16")
        kornia_net.load_state_dict(ours.net.state_dict())
        kornia_net.eval()
        image = to_tensor(read_rgb(data_dir / PARITY_PHOTOS[0], 480))
        with torch.no_grad():
            ref = kornia_net(image[None])[0]
        got = ALIKED(resize=None).extract(image)
        dist, idx = nearest(ref.keypoints, got["keypoints"][0])
        assert len(ref.keypoints) > 300
        assert float((dist < 0.5).float().mean()) == 1.0
        assert len(got["keypoints"][0]) >= len(ref.keypoints)
        desc_diff = (got["descriptors"][0][idx] - ref.descriptors).abs().max()
        assert float(desc_diff) < 1e-3


class TestALIKEDBehaviour:
    def test_budget_and_variants(self, data_dir):
        image = read_rgb(data_dir / GLINT_FRAME)
        feats = ALIKED(max_num_keypoints=100, resize=None).extract(image)
        assert feats["keypoints"].shape == (1, 100, 2)
        topk = ALIKED(max_num_keypoints=50, detection_threshold=-1, resize=None).extract(image)
        assert topk["keypoints"].shape == (1, 50, 2)
        assert torch.all(topk["keypoint_scores"][0][:-1] >= topk["keypoint_scores"][0][1:] - 0.05)
        tiny = build_extractor("aliked", model_name="aliked-t16", resize=None).extract(image)
        assert tiny["descriptors"].shape[-1] == 64 and tiny["keypoints"].shape[1] > 50
        norms = tiny["descriptors"][0].norm(dim=-1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)

    def test_memory_layouts_give_the_same_features(self, data_dir, tmp_path, monkeypatch):
        """Channels-last and contiguous networks (pinned, then measured) find the same keypoints."""
        from specglue.ops import choice

        monkeypatch.setenv("SPECGLUE_CACHE", str(tmp_path))
        monkeypatch.delenv(choice.KERNELS_ENV)  # "auto" below measures
        choice.CHOICES.clear()
        image = read_rgb(data_dir / GLINT_FRAME)
        extractor = ALIKED(max_num_keypoints=512, detection_threshold=0.0, resize=None)
        results = {}
        for mode in ("pytorch", "onednn", "auto"):
            with choice.use_kernels(mode):
                results[mode] = extractor.extract(image)
        (entry,) = [v for k, v in choice.CHOICES.entries.items() if k.startswith("aliked network")]
        assert set(entry["ms"]) == {"channels_last", "contiguous"}  # measured in "auto"
        choice.CHOICES.clear()
        plain = results["pytorch"]
        for mode in ("onednn", "auto"):
            other = results[mode]
            dist, idx = nearest(other["keypoints"][0], plain["keypoints"][0])
            assert other["keypoints"].shape == plain["keypoints"].shape == (1, 512, 2)
            assert float(dist.max()) < 1e-3 and len(torch.unique(idx)) == 512  # the same set
            assert float((other["descriptors"][0] - plain["descriptors"][0][idx]).abs().max()) < 1e-4

    def test_bf16_autocast_runs_a_bf16_copy_of_the_network_close_to_fp32(self, data_dir):
        """Under CPU bf16 autocast the network runs as a bf16 copy (made once, again after the
        weights change); keypoints and descriptors stay close to fp32 and come back in fp32."""
        from specglue.ops import cpu

        if not cpu.HAS_ONEDNN_BF16:
            pytest.skip("no bf16 oneDNN on this CPU")
        image = read_rgb(data_dir / GLINT_FRAME)
        extractor = ALIKED(max_num_keypoints=512, detection_threshold=0.0, resize=None)
        fp32 = extractor.extract(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = extractor.extract(image)
            copy = extractor._bf16_net[1]
            assert next(copy.parameters()).dtype == torch.bfloat16
            extractor.extract(image)
            assert extractor._bf16_net[1] is copy  # kept between calls
        assert bf16["keypoints"].dtype == bf16["descriptors"].dtype == torch.float32
        dist, idx = nearest(bf16["keypoints"][0], fp32["keypoints"][0])
        close = dist < 1.0
        assert float(close.float().mean()) > 0.9
        cosine = (bf16["descriptors"][0][close] * fp32["descriptors"][0][idx[close]]).sum(-1)
        assert float(cosine.median()) > 0.99
        with torch.no_grad():
            extractor.net.block1.conv1.weight.mul_(0.5)  # in place: the copy must follow
        with torch.autocast("cpu", dtype=torch.bfloat16):
            extractor.extract(image)
        assert extractor._bf16_net[1] is not copy
        assert torch.equal(extractor._bf16_net[1].block1.conv1.weight,
                           extractor.net.block1.conv1.weight.to(torch.bfloat16))

    def test_bf16_descriptor_head_gives_onednn_padded_row_counts(self, data_dir, monkeypatch):
        """Under CPU bf16 the descriptor head's linear layers see row counts padded to a
        multiple of 64 whatever the keypoint count (oneDNN compiles a kernel per new bf16
        shape: ~13 ms per frame of a video whose keypoint count changes)."""
        from specglue.ops import cpu

        if not cpu.HAS_ONEDNN_BF16:
            pytest.skip("no bf16 oneDNN on this CPU")
        image = read_rgb(data_dir / GLINT_FRAME)
        extractor = ALIKED(max_num_keypoints=300, detection_threshold=0.0, resize=None)
        rows, linear = [], F.linear
        monkeypatch.setattr(F, "linear", lambda x, *args: rows.append(x.numel() // x.shape[-1]) or linear(x, *args))
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            feats = extractor.extract(image)
        assert feats["keypoints"].shape == (1, 300, 2)
        assert len(rows) >= 6 and all(r % 64 == 0 for r in rows), rows  # 4 deformable + 4 head layers

    def test_gradients_reach_the_descriptor_head_and_the_deformable_convolutions(self, data_dir):
        """forward() under autograd: the row-wise layers use the live weights, not kept copies."""
        image = to_tensor(read_rgb(data_dir / GLINT_FRAME)[:96, :128])[None]
        extractor = ALIKED(max_num_keypoints=32, detection_threshold=0.0, resize=None)
        with torch.no_grad():
            extractor.extract(image)  # keeps inference copies of the head's weights
        extractor({"image": image})["descriptors"].sum().backward()
        head = extractor.net.desc_head
        for weight in (head.sf_conv.weight, head.agg_weights, head.offset_conv[0].weight,
                       extractor.net.block3.conv1.regular_conv.weight):
            assert weight.grad is not None and float(weight.grad.abs().sum()) > 0

    def test_sparse_feature_map_equals_the_dense_one(self):
        """The feature map read where the descriptor head reads it equals kornia's dense map:
        at integer pixels and bilinearly (grid_sample, zeros outside), also beyond the border."""
        from specglue.features.aliked import _FeatureMap

        torch.manual_seed(0)
        hp, wp, top, left, h, w = 64, 96, 3, 5, 57, 88  # padded size, padding, cropped size
        parts = [torch.randn(32, hp // s, wp // s) for s in (1, 2, 8, 32)]
        up = [parts[0]] + [F.interpolate(p[None], size=(hp, wp), mode="bilinear", align_corners=True)[0]
                           for p in parts[1:]]
        dense = F.normalize(torch.cat(up, 0), dim=0)[:, top:top + h, left:left + w]  # [128, h, w]
        sparse = _FeatureMap([p.permute(1, 2, 0).contiguous().permute(2, 0, 1) for p in parts], (left, top), (h, w))
        y, x = torch.randint(0, h, (300,)), torch.randint(0, w, (300,))
        torch.testing.assert_close(sparse.at(y, x), dense[:, y, x].T, rtol=0, atol=1e-5)
        grid = torch.rand(40, 16, 2) * 2.4 - 1.2  # some samples outside the map
        expected = F.grid_sample(dense[None], grid[None], mode="bilinear", align_corners=True)[0]
        torch.testing.assert_close(sparse.bilinear(grid), expected.permute(1, 2, 0), rtol=0, atol=1e-5)

    @pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
    def test_row_deformable_convolution_equals_kornias(self, layout):
        """The deformable convolutions of blocks 3 and 4 (one gather, one product) give kornia's
        ``deform_conv2d`` (torchvision's rule), also where large offsets send taps outside the
        map, for a batch, in both memory layouts; same parameters, same state-dict keys."""
        from kornia.feature.aliked.aliked import DeformableConv2d

        from specglue.features.aliked import RowDeformableConv2d

        torch.manual_seed(0)
        reference = DeformableConv2d(16, 24).eval()
        with torch.no_grad():
            reference.offset_conv.weight.mul_(30)  # offsets up to the clamp: many taps leave the map
            reference.offset_conv.bias.uniform_(-3, 3)
        ours = RowDeformableConv2d(16, 24).eval()
        ours.load_state_dict(reference.state_dict())
        x = torch.randn(2, 16, 13, 17).contiguous(memory_format=layout)
        with torch.no_grad():
            offsets = reference.offset_conv(x).abs()
            expected, got = reference(x), ours(x)
        assert float((offsets > 4).float().mean()) > 0.3  # the border rule is exercised
        assert got.shape == expected.shape == (2, 24, 13, 17)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        assert [type(m) for m in ALIKED(resize=None).net.modules() if isinstance(m, DeformableConv2d)] == \
            [RowDeformableConv2d] * 4  # blocks 3 and 4, two each

    def test_compiled_network_gives_the_eager_features(self, data_dir):
        """ALIKED.compile(): the dense network as one torch.compile graph; the same keypoints
        and descriptors as eager up to rounding, also batched at another image size."""
        image = read_rgb(data_dir / GLINT_FRAME)
        conf = {"max_num_keypoints": 256, "detection_threshold": 0.0, "resize": None}
        eager, compiled = ALIKED(**conf), ALIKED(**conf).compile()
        for batch in (to_tensor(image), to_tensor(image[:200, :288]).expand(2, -1, -1, -1)):
            expected, got = eager.extract(batch), compiled.extract(batch)
            for i in range(batch.shape[0] if batch.dim() == 4 else 1):
                dist, idx = nearest(got["keypoints"][i], expected["keypoints"][i])
                assert got["keypoints"].shape == expected["keypoints"].shape
                assert float((dist < 1e-3).float().mean()) > 0.98
                same = dist < 1e-3
                assert float((got["descriptors"][i][same] - expected["descriptors"][i][idx[same]]).abs().max()) < 1e-4
        assert compiled._dense_maps is not eager._dense_maps

    def test_batch_equals_single(self, data_dir):
        frames = [read_rgb(data_dir / GLINT_FRAME.replace("00", f"{i:02d}")) for i in (0, 6)]
        batch = torch.stack([to_tensor(f) for f in frames])
        extractor = ALIKED(resize=None)
        both = extractor.extract(batch)
        counts = both["keypoint_mask"].sum(1).tolist()
        assert counts[0] != counts[1]  # different counts: padding is exercised
        for i, frame in enumerate(frames):
            single = extractor.extract(frame)
            n = counts[i]
            assert n == single["keypoints"].shape[1]
            assert torch.allclose(both["keypoints"][i, :n], single["keypoints"][0], atol=1e-3)
            assert torch.allclose(both["descriptors"][i, :n], single["descriptors"][0], atol=1e-3)
            assert torch.all(both["keypoints"][i, n:] == 0)
            assert torch.all(both["descriptors"][i, n:] == 0)
            assert torch.all(both["keypoint_scores"][i, n:] == 0)

    def test_specular_mask_drops_only_masked(self, data_dir):
        image = read_rgb(data_dir / GLINT_FRAME)
        mask = torch.from_numpy(glint_mask(image))
        extractor = ALIKED(resize=None, mask_margin=2)
        full = extractor.extract(image)
        masked = extractor.extract(image, specular_mask=mask)
        dilated = torch.nn.functional.max_pool2d(mask[None, None].float(), 5, 1, 2)[0, 0] > 0
        kp = full["keypoints"][0]
        inside = dilated[kp[:, 1].round().long(), kp[:, 0].round().long()]
        assert int(inside.sum()) > 0  # the test is not vacuous
        assert torch.equal(masked["keypoints"][0], kp[~inside])
        assert torch.equal(masked["descriptors"][0], full["descriptors"][0][~inside])

    def test_fully_masked_image_gives_empty_features(self, data_dir):
        image = read_rgb(data_dir / GLINT_FRAME)
        mask = torch.ones(image.shape[:2], dtype=torch.bool)
        feats = ALIKED(resize=None).extract(image, specular_mask=mask)
        assert feats["keypoints"].shape == (1, 0, 2)
        assert feats["descriptors"].shape == (1, 0, 128)
        assert feats["keypoint_scores"].shape == (1, 0)
        assert feats["keypoint_mask"].shape == (1, 0)
        assert feats["image_size"].tolist() == [[320.0, 240.0]]

    def test_bad_config(self):
        with pytest.raises(ValueError, match="model_name"):
            ALIKED(model_name="aliked-x99")
        with pytest.raises(ValueError, match="detection_treshold"):
            ALIKED(detection_treshold=0.1)


def low_texture(image, sigma: float = 2.0, gain: float = 0.6):
    """A blurred, darkened copy of a uint8 RGB image (smooth, dim endoscopy-like frame)."""
    import cv2
    import numpy as np

    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return np.clip(blurred.astype(np.float32) * gain, 0, 255).astype(np.uint8)


class TestKeypointFloor:
    def test_low_texture_falls_back_to_top_k(self, data_dir, caplog):
        image = low_texture(read_rgb(data_dir / GLINT_FRAME))  # 320 x 240
        official = ALIKED.official(max_num_keypoints=2048, resize=None).extract(image)
        assert official["keypoints"].shape[1] < 512  # the threshold keeps few maxima
        with caplog.at_level("INFO", logger="specglue.features"):
            floored = ALIKED(max_num_keypoints=2048, resize=None).extract(image)
        assert floored["keypoints"].shape[1] == 2048
        assert "under the floor of 512" in caplog.text
        # top-k of the same maxima: the threshold keypoints are among them
        dist, _ = nearest(official["keypoints"][0], floored["keypoints"][0])
        assert float(dist.max()) < 1e-4
        # the scores are in descending order (strongest first), as in top-k mode
        topk = ALIKED(max_num_keypoints=2048, resize=None, detection_threshold=-1).extract(image)
        assert torch.equal(topk["keypoints"], floored["keypoints"])

    def test_floor_off_is_official(self, data_dir, caplog):
        image = low_texture(read_rgb(data_dir / GLINT_FRAME))
        off = ALIKED(max_num_keypoints=2048, resize=None, keypoint_floor=0).extract(image)
        official = ALIKED.official(max_num_keypoints=2048, resize=None).extract(image)
        assert torch.equal(off["keypoints"], official["keypoints"])

    def test_textured_image_is_unchanged(self, data_dir, caplog):
        image = read_rgb(data_dir / PARITY_PHOTOS[0], 640)
        with caplog.at_level("INFO", logger="specglue.features"):
            ours = ALIKED(max_num_keypoints=1024, resize=None).extract(image)
        official = ALIKED.official(max_num_keypoints=1024, resize=None).extract(image)
        assert torch.equal(ours["keypoints"], official["keypoints"])
        assert "under the floor" not in caplog.text

    @pytest.mark.parametrize("floor", [-0.1, 1.5, "half"])
    def test_bad_floor(self, floor):
        with pytest.raises(ValueError, match="keypoint_floor"):
            ALIKED(keypoint_floor=floor)
