"""Self-calibration of the focal length from fundamental matrices."""

import numpy as np
import pytest

from specglue.geometry.calibration import essential_score, focal_from_fundamentals


def _skew(t):
    return np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])


def _rotation(rng, degrees):
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = np.radians(degrees)
    K = _skew(axis)
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


def _fundamentals(focal, principal_point, count, rng, noise=0.0):
    K = np.array([[focal, 0, principal_point[0]], [0, focal, principal_point[1]], [0, 0, 1.0]])
    K_inv = np.linalg.inv(K)
    out = []
    for _ in range(count):
        R, t = _rotation(rng, rng.uniform(2, 10)), rng.normal(size=3)
        E = _skew(t / np.linalg.norm(t)) @ R
        E += noise * rng.normal(size=(3, 3))  # errors of a fit, in normalised coordinates
        F = K_inv.T @ E @ K_inv
        out.append(F / np.linalg.norm(F))
    return np.stack(out)


def test_an_exact_essential_matrix_scores_zero_only_at_the_true_focal():
    F = _fundamentals(666.0, (960, 540), 1, np.random.default_rng(0))
    scores = essential_score(F, np.array([400.0, 666.0, 2304.0]), (960, 540))[0]
    assert scores[1] < 1e-9 < scores[0] and scores[1] < scores[2]


@pytest.mark.parametrize("focal", [200.0, 666.0, 3000.0])
def test_the_focal_is_recovered_from_noisy_pairs(focal):
    rng = np.random.default_rng(1)
    F = _fundamentals(focal, (960, 540), 30, rng, noise=0.01)
    F[:5] = rng.normal(size=(5, 3, 3))  # a few pairs that say nothing
    estimate = focal_from_fundamentals(F, (960, 540), (0.1 * 1920, 5 * 1920))
    assert estimate == pytest.approx(focal, rel=0.05)


def test_too_few_pairs_or_bad_input():
    F = _fundamentals(500.0, (320, 240), 2, np.random.default_rng(2))
    assert focal_from_fundamentals(F, (320, 240), (100, 3000)) is None
    assert focal_from_fundamentals(np.zeros((5, 3, 3)), (320, 240), (100, 3000)) is None
    with pytest.raises(ValueError, match=r"\[P, 3, 3\]"):
        focal_from_fundamentals(np.zeros((5, 9)), (320, 240), (100, 3000))
    with pytest.raises(ValueError, match="focal_range"):
        focal_from_fundamentals(F, (320, 240), (3000, 100))
