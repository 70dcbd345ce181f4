"""Tests for specglue.geometry.estimators: MAGSAC++ estimators, DLT, pose errors and AUC."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from specglue.geometry import (
    ESTIMATORS,
    GeometryResult,
    corner_error,
    dlt_homography,
    error_auc,
    estimate,
    estimate_essential,
    estimate_fundamental,
    estimate_homography,
    relative_pose_error,
    reprojection_error,
    sample_homography,
    warp_points,
)

WIDTH, HEIGHT = 640, 480
K0 = np.array([[500.0, 0.0, 320.0], [0.0, 505.0, 240.0], [0.0, 0.0, 1.0]])
K1 = np.array([[520.0, 0.0, 310.0], [0.0, 515.0, 250.0], [0.0, 0.0, 1.0]])


def _rotation(rvec) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))[0]


@pytest.fixture
def homography_data():
    """200 correspondences of a known H: 70 % inliers with 0.5 px noise, 30 % random outliers."""
    rng = np.random.default_rng(0)
    H = sample_homography(HEIGHT, WIDTH, rng=rng)
    kpts0 = rng.uniform([0, 0], [WIDTH, HEIGHT], (200, 2))
    kpts1 = warp_points(kpts0, H) + rng.normal(0, 0.5, (200, 2))
    outlier = np.zeros(200, bool)
    outlier[rng.choice(200, 60, replace=False)] = True
    kpts1[outlier] = rng.uniform([0, 0], [WIDTH, HEIGHT], (60, 2))
    # a random point can land near its true image by chance: only count real outliers
    outlier &= np.linalg.norm(kpts1 - warp_points(kpts0, H), axis=1) > 5
    return kpts0, kpts1, H, ~outlier


@pytest.fixture
def two_view_data():
    """300 projections of 3D points in two cameras with a known pose, 0.3 px noise, 30 % outliers."""
    rng = np.random.default_rng(1)
    X0 = np.c_[rng.uniform(-2, 2, (300, 2)), rng.uniform(4, 8, 300)]
    R = _rotation([0.05, -0.12, 0.03])
    t = np.array([1.0, 0.1, 0.05])
    X1 = X0 @ R.T + t
    p0 = X0 @ K0.T
    p1 = X1 @ K1.T
    p0 = p0[:, :2] / p0[:, 2:] + rng.normal(0, 0.3, (300, 2))
    p1 = p1[:, :2] / p1[:, 2:] + rng.normal(0, 0.3, (300, 2))
    outlier = rng.random(300) < 0.3
    p1[outlier] = rng.uniform([0, 0], [WIDTH, HEIGHT], (outlier.sum(), 2))
    return p0, p1, R, t, ~outlier


class TestGeometryResult:
    def test_properties(self):
        res = GeometryResult(model=np.eye(3), inliers=np.array([True, False, True, True]), kind="homography")
        assert res.num_inliers == 3 and res.inlier_ratio == pytest.approx(0.75) and res.success
        empty = GeometryResult(model=None, inliers=np.zeros(0, bool), kind="homography")
        assert empty.num_inliers == 0 and empty.inlier_ratio == 0.0 and not empty.success


class TestEstimateHomography:
    def test_recovers_h_and_inliers_with_outliers(self, homography_data):
        kpts0, kpts1, H, is_inlier = homography_data
        res = estimate_homography(kpts0, kpts1)
        assert res.kind == "homography" and res.model.shape == (3, 3)
        assert corner_error(res.model, H, WIDTH, HEIGHT) < 1.0
        assert res.inliers.dtype == bool and res.inliers.shape == (200,)
        assert np.mean(res.inliers == is_inlier) > 0.95
        assert res.num_inliers == pytest.approx(is_inlier.sum(), abs=5)

    def test_accepts_torch(self, homography_data):
        kpts0, kpts1, H, _ = homography_data
        res = estimate_homography(torch.from_numpy(kpts0).float(), torch.from_numpy(kpts1).float())
        assert corner_error(res.model, H, WIDTH, HEIGHT) < 1.0

    def test_dispatch_matches_direct_call(self, homography_data):
        kpts0, kpts1, _, _ = homography_data
        a = estimate("homography", kpts0, kpts1, threshold_px=2.0)
        b = estimate_homography(kpts0, kpts1, threshold_px=2.0)
        np.testing.assert_allclose(a.model, b.model)
        assert set(ESTIMATORS) == {"homography", "fundamental", "essential"}

    def test_real_graffiti_pair(self, data_dir):
        folder = data_dir / "06_oxford_graffiti_homography"
        img0 = cv2.imread(str(folder / "img1.png"), cv2.IMREAD_GRAYSCALE)
        img1 = cv2.imread(str(folder / "img2.png"), cv2.IMREAD_GRAYSCALE)
        H_gt = np.loadtxt(folder / "H1to2p")
        sift = cv2.SIFT_create(nfeatures=2000)
        kp0, desc0 = sift.detectAndCompute(img0, None)
        kp1, desc1 = sift.detectAndCompute(img1, None)
        knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc0, desc1, k=2)
        good = [m for m, n in knn if m.distance < 0.8 * n.distance]
        assert len(good) > 100
        kpts0 = np.array([kp0[m.queryIdx].pt for m in good])
        kpts1 = np.array([kp1[m.trainIdx].pt for m in good])
        res = estimate_homography(kpts0, kpts1)
        h, w = img0.shape
        assert corner_error(res.model, H_gt, w, h) < 3.0
        assert res.num_inliers > 50
        # the inliers are matches that agree with the ground truth
        assert np.mean(reprojection_error(kpts0, kpts1, H_gt)[res.inliers] < 5.0) > 0.9


class TestEstimateEpipolar:
    def test_essential_recovers_pose(self, two_view_data):
        p0, p1, R, t, is_inlier = two_view_data
        res = estimate_essential(p0, p1, K0, K1)
        assert res.kind == "essential" and res.model.shape == (3, 3)
        assert res.R.shape == (3, 3) and res.t.shape == (3,)
        err_R, err_t = relative_pose_error(R, t, res.R, res.t)
        assert err_R < 1.0 and err_t < 2.0
        assert np.mean(res.inliers == is_inlier) > 0.95

    def test_essential_via_dispatch_with_torch(self, two_view_data):
        p0, p1, R, t, _ = two_view_data
        res = estimate("essential", torch.from_numpy(p0), torch.from_numpy(p1), torch.from_numpy(K0), K1)
        assert relative_pose_error(R, t, res.R, res.t)[0] < 1.0

    def test_fundamental_recovers_pose(self, two_view_data):
        p0, p1, R, t, is_inlier = two_view_data
        res = estimate_fundamental(p0, p1)
        assert res.kind == "fundamental" and res.model.shape == (3, 3)
        assert np.mean(res.inliers == is_inlier) > 0.95
        E = K1.T @ res.model @ K0
        n0 = cv2.undistortPoints(p0.reshape(-1, 1, 2), K0, None).reshape(-1, 2)
        n1 = cv2.undistortPoints(p1.reshape(-1, 1, 2), K1, None).reshape(-1, 2)
        _, R_est, t_est, _ = cv2.recoverPose(E, n0, n1, np.eye(3), mask=res.inliers.astype(np.uint8))
        err_R, err_t = relative_pose_error(R, t, R_est, t_est)
        assert err_R < 1.0 and err_t < 3.0


class TestDegenerateAndInvalidInput:
    @pytest.mark.parametrize("kind,minimum", [("homography", 4), ("fundamental", 8), ("essential", 5)])
    def test_too_few_points_gives_no_model(self, kind, minimum):
        rng = np.random.default_rng(0)
        for n in (0, minimum - 1):
            k0, k1 = rng.uniform(0, 100, (n, 2)), rng.uniform(0, 100, (n, 2))
            args = (k0, k1, K0, K1) if kind == "essential" else (k0, k1)
            res = estimate(kind, *args)
            assert res.model is None and res.kind == kind
            assert res.inliers.shape == (n,) and not res.inliers.any()

    def test_shape_errors_name_the_argument(self):
        good = np.zeros((10, 2))
        with pytest.raises(ValueError, match="kpts0"):
            estimate_homography(np.zeros((10, 3)), good)
        with pytest.raises(ValueError, match="kpts1"):
            estimate_fundamental(good, np.zeros(10))
        with pytest.raises(ValueError, match="same number"):
            estimate_homography(good, np.zeros((9, 2)))
        bad = good.copy()
        bad[3, 1] = np.nan
        with pytest.raises(ValueError, match="kpts1.*non-finite"):
            estimate_homography(good, bad)
        with pytest.raises(ValueError, match="K1"):
            estimate_essential(good, good, K0, np.eye(2))
        with pytest.raises(ValueError, match="threshold_px"):
            estimate_homography(good, good, threshold_px=-1.0)

    def test_unknown_kind_lists_names(self):
        with pytest.raises(ValueError, match="essential.*fundamental.*homography"):
            estimate("affine", np.zeros((4, 2)), np.zeros((4, 2)))


class TestDLT:
    def test_exact_on_clean_correspondences(self):
        rng = np.random.default_rng(2)
        H = sample_homography(HEIGHT, WIDTH, rng=rng)
        kpts0 = rng.uniform(0, 600, (30, 2))
        H_est = dlt_homography(kpts0, warp_points(kpts0, H))
        assert H_est[2, 2] == pytest.approx(1.0)
        assert corner_error(H_est, H, WIDTH, HEIGHT) < 1e-6

    def test_uses_all_matches_and_weights(self, homography_data):
        kpts0, kpts1, H, is_inlier = homography_data
        # no RANSAC: outliers ruin the plain DLT ...
        assert corner_error(dlt_homography(kpts0, kpts1), H, WIDTH, HEIGHT) > 10.0
        # ... and zero weights remove them
        weighted = dlt_homography(kpts0, kpts1, weights=is_inlier.astype(float))
        assert corner_error(weighted, H, WIDTH, HEIGHT) < 1.0

    def test_degenerate_returns_none(self):
        assert dlt_homography(np.zeros((3, 2)), np.zeros((3, 2))) is None
        collinear = np.c_[np.arange(6.0), np.arange(6.0)]
        assert dlt_homography(collinear, collinear) is None


class TestRelativePoseError:
    def test_known_angles(self):
        R_gt, t_gt = np.eye(3), np.array([1.0, 0.0, 0.0])
        err_R, err_t = relative_pose_error(R_gt, t_gt, _rotation([0, 0, math.radians(10)]), -t_gt)
        assert err_R == pytest.approx(10.0) and err_t == pytest.approx(0.0, abs=1e-6)  # sign-ambiguous t
        assert relative_pose_error(R_gt, t_gt, R_gt, np.array([0.0, 2.0, 0.0]))[1] == pytest.approx(90.0)
        assert relative_pose_error(R_gt, t_gt, R_gt, np.array([1.0, 1.0, 0.0]))[1] == pytest.approx(45.0)

    def test_failure_is_inf(self):
        assert relative_pose_error(np.eye(3), np.ones(3), None, None) == (math.inf, math.inf)


class TestErrorAUC:
    def test_hand_worked(self):
        # recall curve through (0, 0), (1, 0.5), (3, 1): area to 2 is 0.25 + 0.5, to 4 is 0.25 + 1.5 + 1
        np.testing.assert_allclose(error_auc([1.0, 3.0], (2, 4)), [0.375, 0.6875])

    def test_limits(self):
        assert error_auc([0.0, 0.0, 0.0], (1, 3, 5)) == pytest.approx([1.0, 1.0, 1.0])
        assert error_auc([math.inf, float("nan")], (5, 10)) == [0.0, 0.0]
        assert error_auc([], (5,)) == [0.0]
        # failures count in the denominator
        assert error_auc([0.0, math.inf], (5,)) == pytest.approx([0.5])

    def test_monotone_in_threshold(self):
        errors = np.random.default_rng(0).exponential(5.0, 100)
        aucs = error_auc(errors, (5, 10, 20))
        assert 0 < aucs[0] < aucs[1] < aucs[2] < 1
