"""Tests for specglue.geometry.homography: warping, sampling, errors and ground-truth matches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from specglue.geometry import (
    corner_error,
    gt_matches_from_homography,
    gt_matches_pair_from_homography,
    homography_overlap,
    reprojection_error,
    rot90_transform,
    rotation_homography,
    sample_homography,
    warp_image,
    warp_points,
)

TRANSLATION_3_4 = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 4.0], [0.0, 0.0, 1.0]])


def _perspective_h() -> np.ndarray:
    return np.array([[0.9, 0.1, 12.0], [-0.05, 1.1, -7.0], [2e-4, -1e-4, 1.0]])


class TestWarpPoints:
    def test_hand_worked_translation(self):
        pts = np.array([[0.0, 0.0], [10.0, -2.0]])
        np.testing.assert_allclose(warp_points(pts, TRANSLATION_3_4), [[3.0, 4.0], [13.0, 2.0]])

    def test_hand_worked_projective(self):
        H = np.array([[2.0, 0, 0], [0, 2.0, 0], [0.5, 0, 1.0]])
        # (2, 4) -> (4, 8, 2) -> (2, 4)
        np.testing.assert_allclose(warp_points(np.array([[2.0, 4.0]]), H), [[2.0, 4.0]])

    def test_round_trip_with_inverse_numpy(self):
        H = _perspective_h()
        pts = np.random.default_rng(0).uniform(0, 640, (50, 2))
        back = warp_points(warp_points(pts, H), np.linalg.inv(H))
        np.testing.assert_allclose(back, pts, atol=1e-8)

    def test_round_trip_with_inverse_torch(self):
        H = torch.from_numpy(_perspective_h())
        pts = torch.rand(2, 50, 2, dtype=torch.float64) * 640
        out = warp_points(pts, H)
        assert isinstance(out, torch.Tensor) and out.shape == (2, 50, 2) and out.dtype == torch.float64
        torch.testing.assert_close(warp_points(out, torch.linalg.inv(H)), pts)

    def test_batched_homographies_broadcast(self):
        Hs = np.stack([np.eye(3), TRANSLATION_3_4])  # [2, 3, 3]
        pts = np.zeros((2, 1, 2))
        np.testing.assert_allclose(warp_points(pts, Hs), [[[0.0, 0.0]], [[3.0, 4.0]]])

    @pytest.mark.parametrize("backend", ["numpy", "torch"])
    def test_points_at_infinity_are_finite(self, backend):
        H = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 1.0]])  # w = 1 - x: x=1 maps to infinity
        pts = np.array([[1.0, 0.0], [1.0 - 1e-12, 2.0]])
        if backend == "torch":
            out = warp_points(torch.from_numpy(pts), torch.from_numpy(H)).numpy()
        else:
            out = warp_points(pts, H)
        assert np.all(np.isfinite(out))
        assert out[0, 0] > 1e6  # far away, not NaN

    def test_rejects_bad_shapes(self):
        with pytest.raises(ValueError, match="points"):
            warp_points(np.zeros((4, 3)), np.eye(3))
        with pytest.raises(ValueError, match="H"):
            warp_points(np.zeros((4, 2)), np.eye(2))


class TestSampleHomography:
    def test_deterministic_with_seed_and_generator(self):
        a = sample_homography(480, 640, rng=123)
        b = sample_homography(480, 640, rng=np.random.default_rng(123))
        c = sample_homography(480, 640, rng=124)
        assert a.shape == (3, 3) and a.dtype == np.float64
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)
        assert a[2, 2] == pytest.approx(1.0)

    def test_corners_stay_mostly_in_frame(self):
        rng = np.random.default_rng(0)
        w, h = 640, 480
        corners = np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
        for _ in range(50):
            H = sample_homography(h, w, rng=rng)
            covered, inside = homography_overlap(H, w, h)
            assert covered >= 0.7 and inside >= 0.7
            warped = warp_points(corners, H)
            assert np.all(warped[:, 0] > -0.5 * w) and np.all(warped[:, 0] < 1.5 * w)
            assert np.all(warped[:, 1] > -0.5 * h) and np.all(warped[:, 1] < 1.5 * h)

    def test_samples_vary_within_ranges(self):
        rng = np.random.default_rng(1)
        Hs = [sample_homography(480, 640, rng=rng) for _ in range(20)]
        angles = [math.degrees(math.atan2(H[1, 0] - H[2, 0] * H[1, 2], H[0, 0] - H[2, 0] * H[0, 2])) for H in Hs]
        assert np.std([H[0, 2] for H in Hs]) > 1.0  # not a constant
        assert max(abs(a) for a in angles) < 40.0

    def test_zero_ranges_give_identity(self):
        H = sample_homography(
            100, 200, rng=0, max_angle_deg=0, scale_range=(1, 1), perspective=0, translation=0
        )
        np.testing.assert_allclose(H, np.eye(3), atol=1e-12)

    def test_mirror_is_rejected_by_overlap(self):
        mirror = np.array([[-1.0, 0, 640], [0, 1.0, 0], [0, 0, 1.0]])
        assert homography_overlap(mirror, 640, 480) == (0.0, 0.0)
        assert homography_overlap(np.eye(3), 640, 480) == pytest.approx((1.0, 1.0))

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="scale_range"):
            sample_homography(10, 10, scale_range=(0.0, 1.0))
        with pytest.raises(ValueError, match="height and width"):
            sample_homography(0, 10)


class TestWarpImage:
    def test_integer_translation_shifts_pixels(self):
        img = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
        out = warp_image(img, TRANSLATION_3_4)
        assert out.shape == img.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out[4:, 3:], img[:-4, :-3])
        assert np.all(out[:4] == 0) and np.all(out[:, :3] == 0)

    def test_bright_pixel_follows_warp_points(self):
        img = np.zeros((60, 80), np.float32)
        img[20, 30] = 1.0
        H = np.array([[1.2, 0.1, 5.0], [-0.1, 0.9, 3.0], [0.0, 0.0, 1.0]])
        out = warp_image(img, H, (100, 90), interpolation=0)  # (width, height), nearest
        assert out.shape == (90, 100)
        y, x = np.unravel_index(np.argmax(out), out.shape)
        np.testing.assert_allclose([x, y], warp_points(np.array([[30.0, 20.0]]), H)[0], atol=1.0)

    def test_torch_layouts_and_bool_masks(self):
        img = torch.rand(2, 6, 24, 32)  # more than 4 channels: warped in chunks
        out = warp_image(img, TRANSLATION_3_4)
        assert out.shape == img.shape and out.dtype == img.dtype
        torch.testing.assert_close(out[:, :, 4:, 3:], img[:, :, :-4, :-3])
        mask = torch.zeros(1, 24, 32, dtype=torch.bool)
        mask[0, 5, 5] = True
        warped = warp_image(mask, TRANSLATION_3_4, (40, 30))
        assert warped.dtype == torch.bool and warped.shape == (1, 30, 40)
        assert warped[0, 9, 8] and warped.sum() == 1


class TestCornerError:
    def test_identical_is_zero(self):
        H = _perspective_h()
        assert corner_error(H, H, 640, 480) == pytest.approx(0.0, abs=1e-9)

    def test_translation_3_4_is_5(self):
        assert corner_error(TRANSLATION_3_4, np.eye(3), 640, 480) == pytest.approx(5.0)
        assert corner_error(torch.from_numpy(TRANSLATION_3_4), np.eye(3), 64, 48) == pytest.approx(5.0)

    def test_failures_are_inf(self):
        assert corner_error(None, np.eye(3), 640, 480) == math.inf
        nan_h = np.full((3, 3), np.nan)
        assert corner_error(nan_h, np.eye(3), 640, 480) == math.inf
        assert corner_error(np.zeros((2, 2)), np.eye(3), 640, 480) == math.inf


class TestReprojectionError:
    def test_symmetric_max(self):
        H = np.diag([2.0, 2.0, 1.0])
        kpts0 = np.array([[1.0, 1.0], [5.0, 5.0]])
        kpts1 = np.array([[3.0, 2.0], [10.0, 10.0]])
        # forward |(2, 2) - (3, 2)| = 1, backward |(1.5, 1) - (1, 1)| = 0.5 -> max is 1
        np.testing.assert_allclose(reprojection_error(kpts0, kpts1, H), [1.0, 0.0])

    def test_torch(self):
        kpts0 = torch.zeros(3, 2)
        err = reprojection_error(kpts0, kpts0 + torch.tensor([3.0, 4.0]), torch.eye(3))
        assert isinstance(err, torch.Tensor) and err.shape == (3,)
        torch.testing.assert_close(err, torch.full((3,), 5.0))

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="kpts1"):
            reprojection_error(np.zeros((3, 2)), np.zeros((4, 2)), np.eye(3))


class TestGtMatches:
    def test_identity_with_known_offsets(self):
        kpts0 = np.array([[10.0, 10.0], [50.0, 50.0], [100.0, 100.0], [200.0, 200.0], [300.0, 300.0]])
        kpts1 = np.array(
            [
                [51.0, 52.0],  # kpts0[1] at distance sqrt(5): positive
                [11.0, 10.0],  # kpts0[0] at distance 1: positive
                [100.0, 104.0],  # kpts0[2] at distance 4: between thresholds -> ignored
                [300.0, 310.0],  # kpts0[4] at distance 10: beyond th_negative -> unmatched
            ]
        )
        m0, m1 = gt_matches_pair_from_homography(kpts0, kpts1, np.eye(3), th_positive=3, th_negative=5)
        np.testing.assert_array_equal(m0, [1, 0, -2, -1, -1])
        np.testing.assert_array_equal(m1, [1, 0, -2, -1])
        assert m0.dtype == np.int64

    def test_decoy_outside_threshold_is_unmatched(self):
        kpts0 = np.array([[20.0, 20.0]])
        kpts1 = np.array([[23.5, 20.0]])  # 3.5 px > 3 px
        np.testing.assert_array_equal(gt_matches_from_homography(kpts0, kpts1, np.eye(3)), [-1])

    def test_non_mutual_neighbour_is_ignored(self):
        kpts0 = np.array([[300.0, 300.0], [301.0, 300.0]])
        kpts1 = np.array([[300.2, 300.0]])
        np.testing.assert_array_equal(gt_matches_from_homography(kpts0, kpts1, np.eye(3)), [0, -2])

    def test_recovers_permutation_under_homography(self):
        rng = np.random.default_rng(0)
        H = sample_homography(480, 640, rng=rng)
        kpts0 = rng.uniform(0, 640, (40, 2))
        perm = rng.permutation(40)
        kpts1 = warp_points(kpts0, H)[perm] + rng.normal(0, 0.3, (40, 2))
        m0 = gt_matches_from_homography(torch.from_numpy(kpts0), torch.from_numpy(kpts1), H)
        assert isinstance(m0, torch.Tensor) and m0.dtype == torch.int64
        expected = np.argsort(perm)  # kpts1[expected[i]] is the image of kpts0[i]
        np.testing.assert_array_equal(m0.numpy(), expected)

    def test_empty_inputs(self):
        kpts = np.zeros((3, 2))
        np.testing.assert_array_equal(gt_matches_from_homography(kpts, np.zeros((0, 2)), np.eye(3)), [-1, -1, -1])
        m0, m1 = gt_matches_pair_from_homography(np.zeros((0, 2)), kpts, np.eye(3))
        assert m0.shape == (0,)
        np.testing.assert_array_equal(m1, [-1, -1, -1])

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="kpts0"):
            gt_matches_from_homography(np.zeros((3, 3)), np.zeros((2, 2)), np.eye(3))


@pytest.mark.parametrize("rot", [0, 1, 2, 3])
def test_rot90_transform_matches_rot90(rot):
    w, h = 7, 4
    image = np.zeros((h, w))
    image[1, 5] = 1  # pixel (x=5, y=1)
    A, (rw, rh) = rot90_transform(w, h, rot)
    rotated = np.rot90(image, k=rot)
    assert rotated.shape == (rh, rw)
    x, y, _ = A @ [5, 1, 1]
    assert rotated[int(round(y)), int(round(x))] == 1


@pytest.mark.parametrize("angle", [0.0, 37.0, 90.0, -135.0, 180.0])
def test_rotation_homography_keeps_the_whole_frame(angle):
    w, h = 64, 40
    H, (cw, ch) = rotation_homography(w, h, angle)
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    warped = warp_points(corners, H)
    # the turned frame fits the canvas and touches its borders
    assert warped[:, 0].min() >= -0.5 - 1e-6 and warped[:, 0].max() <= cw - 0.5 + 1e-6
    assert warped[:, 1].min() >= -0.5 - 1e-6 and warped[:, 1].max() <= ch - 0.5 + 1e-6
    assert cw - 1 <= np.ptp(warped[:, 0]) <= cw + 1e-6 and ch - 1 <= np.ptp(warped[:, 1]) <= ch + 1e-6
    # a pure rotation: lengths are kept and a horizontal segment turns counter-clockwise on
    # screen (y points down) by the angle
    a, b = warp_points(np.array([[10.0, 20.0], [30.0, 20.0]]), H)
    assert np.linalg.norm(b - a) == pytest.approx(20.0)
    turned = np.arctan2(-(b - a)[1], (b - a)[0])
    assert np.exp(1j * turned) == pytest.approx(np.exp(1j * np.radians(angle)))


def test_rotation_homography_by_90_is_rot90():
    H, size = rotation_homography(7, 4, 90.0)
    A, rot_size = rot90_transform(7, 4, 1)
    assert size == rot_size and np.allclose(H, A, atol=1e-9)

