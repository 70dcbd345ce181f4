"""Tests for specglue.specular.synthesize / synthesize_pair."""

from __future__ import annotations

import cv2
import pytest
import torch
import torch.nn.functional as F

from specglue.specular import synthesize, synthesize_pair


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a & b).sum().item() / max(1, (a | b).sum().item())


def grow(mask: torch.Tensor, radius: int) -> torch.Tensor:
    return F.max_pool2d(mask[None, None].float(), 2 * radius + 1, 1, radius)[0, 0] > 0


@pytest.fixture(scope="module")
def photo(data_dir) -> torch.Tensor:
    """``[3, 240, 320]`` real graffiti photo."""
    bgr = cv2.resize(cv2.imread(str(data_dir / "06_oxford_graffiti_homography" / "img1.png")), (320, 256))
    return torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).float() / 255.0


class TestSynthesize:
    def test_deterministic_with_seed(self, photo):
        a = synthesize(photo, seed=7)
        b = synthesize(photo, seed=7, generator=None)
        c = synthesize(photo, generator=torch.Generator().manual_seed(7))
        d = synthesize(photo, seed=8)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])
        assert not torch.equal(a[1], d[1])

    @pytest.mark.parametrize("seed", range(4))
    def test_mask_nonempty_and_saturated(self, photo, seed):
        out, mask = synthesize(photo, num_blobs=(3, 8), streaks=2, seed=seed)
        assert out.shape == photo.shape and mask.shape == photo.shape[1:] and mask.dtype == torch.bool
        assert mask.sum() > 20
        under = out[:, mask]  # [3, N]
        assert under.min() >= 0.45  # at least half-way to the light even at the mask edge
        assert under.min(0).values.median() > 0.93  # the core is saturated in every channel
        assert out.min() >= 0 and out.max() <= 1

    @pytest.mark.parametrize("seed", range(4))
    def test_unchanged_away_from_highlights(self, photo, seed):
        out, mask = synthesize(photo, seed=seed)
        changed = (out != photo).any(0)
        assert changed.sum() >= mask.sum()  # the soft edge reaches past the mask ...
        assert not (changed & ~grow(mask, 4)).any()  # ... but only by a few pixels
        assert changed.float().mean() < 0.2

    def test_batch_gets_independent_draws(self, photo):
        out, mask = synthesize(torch.stack([photo, photo]), seed=1)
        assert out.shape == (2, *photo.shape) and mask.shape == (2, *photo.shape[1:])
        assert iou(mask[0], mask[1]) < 0.3

    def test_size_range_and_counts(self, photo):
        _, small = synthesize(photo, num_blobs=5, streaks=0, size_range=(0.01, 0.01), seed=0)
        _, large = synthesize(photo, num_blobs=5, streaks=0, size_range=(0.08, 0.08), seed=0)
        assert 0 < small.sum() < large.sum()
        _, none = synthesize(photo, num_blobs=0, streaks=0, seed=0)
        assert not none.any()

    def test_center_placement(self, photo):
        """'center' draws centres around the image middle, 'uniform' anywhere."""
        blank = torch.zeros(3, 400, 400)
        centre = torch.zeros(400, 400, dtype=torch.bool)
        centre[100:300, 100:300] = True

        def share_in_centre(placement: str) -> float:
            _, mask = synthesize(blank, num_blobs=200, streaks=0, size_range=(0.005, 0.005), placement=placement, seed=0)
            return (mask & centre).sum().item() / mask.sum().item()

        # expected shares: about 0.47 (two 1-sigma bands) and 0.25 (a quarter of the area)
        assert share_in_centre("center") > 0.38 and 0.15 < share_in_centre("uniform") < 0.33

    def test_bad_input(self, photo):
        with pytest.raises(TypeError, match="image"):
            synthesize((photo * 255).to(torch.uint8), seed=0)
        with pytest.raises(ValueError, match=r"image.*\[B, 3, H, W\]"):
            synthesize(photo[:1], seed=0)
        with pytest.raises(ValueError, match="at most one"):
            synthesize(photo, seed=0, generator=torch.Generator())
        with pytest.raises(ValueError, match="placement"):
            synthesize(photo, placement="everywhere")


class TestSynthesizePair:
    @pytest.mark.parametrize("seed", range(3))
    def test_camera_fixed_overlaps(self, photo, seed):
        other = photo.flip(-1)
        pair = synthesize_pair(photo, other, placement="camera_fixed", jitter_px=2.0, num_blobs=(5, 10), seed=seed)
        assert pair.mask0.any() and iou(pair.mask0, pair.mask1) > 0.5
        still = synthesize_pair(photo, other, placement="camera_fixed", jitter_px=0.0, seed=seed)
        assert torch.equal(still.mask0, still.mask1)

    @pytest.mark.parametrize("seed", range(3))
    def test_independent_do_not_overlap(self, photo, seed):
        pair = synthesize_pair(photo, photo, placement="independent", num_blobs=(5, 10), seed=seed)
        assert pair.mask0.any() and pair.mask1.any()
        assert iou(pair.mask0, pair.mask1) < 0.2

    def test_surface_fixed_follows_homography(self, photo):
        shift = torch.tensor([[1.0, 0, 10], [0, 1, 6], [0, 0, 1]])
        pair = synthesize_pair(photo, photo, shift, placement="surface_fixed", num_blobs=(5, 10), seed=2)
        moved = torch.zeros_like(pair.mask0)
        moved[6:, 10:] = pair.mask0[:-6, :-10]
        assert iou(moved, pair.mask1) > 0.9

    def test_batched_pair_and_determinism(self, photo):
        batch = torch.stack([photo, photo.flip(-2)])
        a = synthesize_pair(batch, batch, placement="camera_fixed", seed=3)
        b = synthesize_pair(batch, batch, placement="camera_fixed", seed=3)
        assert a.image0.shape == batch.shape and a.mask1.shape == (2, *photo.shape[1:])
        assert all(torch.equal(x, y) for x, y in zip(a, b))

    def test_bad_input(self, photo):
        with pytest.raises(ValueError, match="H_0to1"):
            synthesize_pair(photo, photo, torch.eye(3), placement="camera_fixed")
        with pytest.raises(ValueError, match="H_0to1"):
            synthesize_pair(photo, photo, placement="surface_fixed")
        with pytest.raises(ValueError, match="placement"):
            synthesize_pair(photo, photo, placement="same")
        with pytest.raises(ValueError, match="image0 and image1"):
            synthesize_pair(photo, photo[None])
        with pytest.raises(ValueError, match="jitter_px"):
            synthesize_pair(photo, photo, placement="camera_fixed", jitter_px=-1)
