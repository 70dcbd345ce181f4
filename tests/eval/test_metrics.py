"""Metrics on constructed cases whose answers are known by hand."""

import math

import numpy as np
import pytest
import torch

from specglue.eval import metrics
from specglue.eval.methods.mnn import mutual_nn_ratio
from specglue.geometry import error_auc


def grid_points(n_side=6, step=60.0, offset=30.0):
    xs, ys = np.meshgrid(np.arange(n_side) * step + offset, np.arange(n_side) * step + offset)
    return np.stack([xs.ravel(), ys.ravel()], 1)


def identity_matches(n):
    return np.stack([np.arange(n), np.arange(n)], 1)


class TestIdentityWarp:
    def test_precision_recall_and_homography(self):
        k = grid_points()
        H = np.eye(3)
        m = identity_matches(len(k))
        errs = metrics.match_errors(k, k, m, H)
        assert np.allclose(errs, 0)
        assert metrics.match_precision(errs) == [1.0, 1.0, 1.0]
        assert metrics.match_recall(k, k, m, H) == [1.0, 1.0, 1.0]
        he = metrics.homography_errors(k, k, m, H, (400, 400))
        assert he["ransac"] < 1e-6 and he["dlt"] < 1e-6
        assert error_auc([he["ransac"], he["dlt"]], (1, 3, 5)) == pytest.approx([1, 1, 1], abs=1e-6)


class TestTranslation:
    H = np.array([[1, 0, 10.0], [0, 1, 5.0], [0, 0, 1]])

    def test_translated_keypoints_are_correct(self):
        k0 = grid_points()
        k1 = k0 + [10.0, 5.0]
        m = identity_matches(len(k0))
        assert metrics.match_precision(metrics.match_errors(k0, k1, m, self.H)) == [1.0, 1.0, 1.0]
        he = metrics.homography_errors(k0, k1, m, self.H, (400, 400))
        assert he["dlt"] < 1e-6 and he["ransac"] < 1e-6

    def test_untranslated_keypoints_have_the_known_error(self):
        k0 = grid_points()
        m = identity_matches(len(k0))
        errs = metrics.match_errors(k0, k0, m, self.H)
        assert np.allclose(errs, math.hypot(10, 5))  # 11.18 px > 5 px
        assert metrics.match_precision(errs) == [0.0, 0.0, 0.0]
        # the DLT recovers the identity: every corner is off by the translation
        he = metrics.homography_errors(k0, k0, m, self.H, (400, 400))
        assert he["dlt"] == pytest.approx(math.hypot(10, 5), abs=1e-6)


def test_wrong_matches_have_zero_precision_and_recall():
    k = grid_points()
    n = len(k)
    wrong = np.stack([np.arange(n), (np.arange(n) + 1) % n], 1)  # every match off by >= 60 px
    errs = metrics.match_errors(k, k, wrong, np.eye(3))
    assert metrics.match_precision(errs) == [0.0, 0.0, 0.0]
    assert metrics.match_recall(k, k, wrong, np.eye(3)) == [0.0, 0.0, 0.0]


def test_recall_and_precision_hand_case():
    # 4 well separated keypoints; image 1 copies with offsets 0.5, 2, 4 and 10 px
    k0 = np.array([[100.0, 100], [300, 100], [100, 300], [300, 300]])
    k1 = k0 + np.array([[0.5, 0], [0, 2], [4, 0], [10, 0]])
    H = np.eye(3)
    pred = np.array([[0, 0], [1, 1], [3, 3]])  # point 2 (4 px off) was missed
    # ground truth at t px: pairs closer than t -> {0} at 1, {0, 1} at 3, {0, 1, 2} at 5
    assert metrics.match_recall(k0, k1, pred, H) == pytest.approx([1.0, 1.0, 2 / 3])
    errs = metrics.match_errors(k0, k1, pred, H)
    assert errs == pytest.approx([0.5, 2, 10])
    assert metrics.match_precision(errs) == pytest.approx([1 / 3, 2 / 3, 2 / 3])


def test_recall_equals_glue_factory_ground_truth():
    rng = np.random.default_rng(0)
    k0 = rng.uniform(0, 300, (80, 2))
    H = np.array([[1.02, 0.05, 3.0], [-0.04, 0.98, -2.0], [1e-5, 2e-5, 1.0]])
    from specglue.geometry import gt_matches_from_homography, warp_points

    k1 = np.concatenate([warp_points(k0[:60], H) + rng.normal(0, 1.5, (60, 2)), rng.uniform(0, 300, (30, 2))])
    gt = metrics.gt_correspondences(k0, k1, H)
    for t in (1.0, 3.0, 5.0):
        ref = gt_matches_from_homography(k0, k1, H, th_positive=t, th_negative=t)
        mine = np.where((gt[:, 0] >= 0) & (gt[:, 1] < t), gt[:, 0], -1)
        assert np.array_equal(np.where(ref >= 0, ref, -1), mine)


def test_empty_inputs():
    k = grid_points()
    empty = np.zeros((0, 2), np.int64)
    assert all(math.isnan(p) for p in metrics.match_precision(metrics.match_errors(k, k, empty, np.eye(3))))
    assert metrics.match_recall(k, k, empty, np.eye(3)) == [0.0, 0.0, 0.0]
    he = metrics.homography_errors(k, k, empty, np.eye(3), (400, 400))
    assert he["ransac"] == math.inf and he["dlt"] == math.inf
    assert all(math.isnan(r) for r in metrics.match_recall(np.zeros((0, 2)), k, empty, np.eye(3)))


def test_out_of_range_matches_raise():
    k = grid_points()
    with pytest.raises(ValueError, match="outside the keypoints"):
        metrics.match_errors(k, k, np.array([[0, len(k)]]), np.eye(3))


class TestPose:
    @staticmethod
    def scene(rng, n=100):
        K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
        angle = np.deg2rad(10)
        R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
        t = np.array([-1.0, 0.1, 0.2])
        X = np.concatenate([rng.uniform(-2, 2, (n, 2)), rng.uniform(4, 8, (n, 1))], 1)
        x0 = X @ K.T
        X1 = X @ R.T + t
        x1 = X1 @ K.T
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, t
        return x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:], K, T

    def test_exact_correspondences_give_zero_error(self):
        k0, k1, K, T = self.scene(np.random.default_rng(0))
        err = metrics.pose_error(k0, k1, identity_matches(len(k0)), K, K, T)
        assert err["R"] < 0.1 and err["t"] < 0.5 and err["pose"] == max(err["R"], err["t"])

    def test_too_few_matches_fail(self):
        k0, k1, K, T = self.scene(np.random.default_rng(0))
        err = metrics.pose_error(k0, k1, identity_matches(3), K, K, T)
        assert err["pose"] == math.inf

    def test_auc_of_known_errors(self):
        # sorted errors 1, 3, inf, inf: recall curve (0,0) (1,.25) (3,.5) then flat at .5
        records = [{"pose_error": e, "num_matches": 10, "num_keypoints0": 10, "num_keypoints1": 10,
                    "inliers": 5, "time_s": 0.01, "stop": -1} for e in (3.0, math.inf, 1.0, math.inf)]
        s = metrics.summarize_pose(records, n_layers=9)
        assert s["auc@5deg"] == pytest.approx(1.875 / 5)
        assert s["auc@10deg"] == pytest.approx(4.375 / 10)
        assert s["auc@20deg"] == pytest.approx(9.375 / 20)
        assert s["inlier_ratio"] == pytest.approx(0.5)
        assert s["stop_hist"] is None


def test_stop_histogram():
    assert metrics.stop_histogram([3, 3, 9, -1], 9) == [0, 0, 2, 0, 0, 0, 0, 0, 1]
    assert metrics.stop_histogram([-1, -1], 9) is None
    # the bins follow the method's depth: a 12-layer model's stops are not clipped to 9
    assert metrics.stop_histogram([12, 3], 12) == [0, 0, 1] + [0] * 8 + [1]
    assert metrics.stop_histogram([12, 3], 0) is None


class TestMutualNN:
    def test_hand_case(self):
        d0 = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
        d1 = torch.tensor([[0, 0.9, 0.1], [1, 0, 0], [0.6, 0, 0.8]])
        matches, scores = mutual_nn_ratio(d0, d1, ratio=1.0)
        got = {tuple(m) for m in matches.tolist()}
        assert got == {(0, 1), (1, 0), (2, 2)}
        assert scores.min() > 0.7

    def test_ratio_rejects_ambiguous(self):
        d0 = torch.tensor([[1.0, 0.0]])
        d1 = torch.tensor([[1.0, 0.01], [1.0, -0.01]])  # two near-identical candidates
        assert len(mutual_nn_ratio(d0, d1, ratio=0.8)[0]) == 0
        assert len(mutual_nn_ratio(d0, d1, ratio=1.0)[0]) == 1

    def test_empty(self):
        m, s = mutual_nn_ratio(torch.zeros(0, 4), torch.randn(5, 4))
        assert m.shape == (0, 2) and s.shape == (0,)


def test_paired_bootstrap_separates_a_real_gain_from_noise():
    """The same draw of pairs for both methods: a method better on every pair gets an interval
    above 0; one equal up to a relabelling of pairs (same errors, another order) gets an
    interval around 0 and the same AUC; failures (inf / nan) count as the worst errors."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 20, size=40)
    better = metrics.paired_bootstrap_auc(base, base * 0.5, 10.0, resamples=500)
    assert better["better"] == 40 and better["worse"] == 0
    assert 0 < better["low"] < better["difference"] < better["high"]
    expected = 100 * (error_auc(base * 0.5, [10])[0] - error_auc(base, [10])[0])
    assert better["difference"] == pytest.approx(expected)
    shuffled = metrics.paired_bootstrap_auc(base, rng.permutation(base), 10.0, resamples=500)
    assert shuffled["difference"] == pytest.approx(0.0, abs=1e-9) and shuffled["low"] < 0 < shuffled["high"]
    failed = metrics.paired_bootstrap_auc(base, np.where(np.arange(40) < 5, np.nan, base), 10.0, resamples=100)
    assert failed["worse"] == 5 and failed["difference"] < 0
    with pytest.raises(ValueError, match="equally long"):
        metrics.paired_bootstrap_auc(base, base[:3], 10.0)
