"""Ground truth through depth and poses on a synthetic scene whose depth is known exactly:
a textured plane seen by two cameras (so a homography relates the views) and an occluder."""

import numpy as np
import torch

from specglue.geometry import IGNORE, UNMATCHED, gt_matches_batch_from_depth, gt_matches_batch_from_homography

W, H = 160, 120
K = torch.tensor([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]], dtype=torch.float64)
PLANE_Z = 5.0  # the plane z = 5 in camera 0


def scene():
    angle = np.deg2rad(8.0)
    R = torch.tensor([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    t = torch.tensor([-0.4, 0.1, 0.3], dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3], T[:3, 3] = R, t
    depth0 = torch.full((H, W), PLANE_Z, dtype=torch.float64)
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    rays = torch.stack([u, v, torch.ones_like(u)], -1) @ torch.linalg.inv(K).T  # camera-1 rays, z = 1
    back = rays @ R  # R^T d
    depth1 = (PLANE_Z + (R.T @ t)[2]) / back[..., 2]  # ray-plane intersection in camera 1
    n = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    homography = K @ (R + torch.outer(t, n) / PLANE_Z) @ torch.linalg.inv(K)
    return depth0, depth1, T, homography


def keypoints(homography, seed=0, count=200):
    rng = np.random.default_rng(seed)
    k0 = torch.from_numpy(rng.uniform([0, 0], [W - 1, H - 1], (count, 2)))
    warped = torch.cat([k0, torch.ones(count, 1, dtype=torch.float64)], 1) @ homography.T
    k1 = warped[:, :2] / warped[:, 2:] + torch.from_numpy(rng.normal(0, 0.7, (count, 2)))
    k1 = torch.cat([k1[: count // 2], torch.from_numpy(rng.uniform([0, 0], [W - 1, H - 1], (count // 2, 2)))])
    outside = ((k1 < 0) | (k1 > torch.tensor([W - 1.0, H - 1.0]))).any(1)  # keypoints lie in their image
    k1[outside] = torch.from_numpy(rng.uniform([0, 0], [W - 1, H - 1], (int(outside.sum()), 2)))
    return k0[None], k1[None][:, torch.from_numpy(rng.permutation(count))]


def depth_labels(k0, k1, depth0, depth1, T, **kwargs):
    return gt_matches_batch_from_depth(k0, k1, depth0[None], depth1[None], K[None], K[None], T[None], **kwargs)


def test_on_a_plane_depth_labels_equal_homography_labels():
    depth0, depth1, T, homography = scene()
    k0, k1 = keypoints(homography)
    size = torch.tensor([[W, H]], dtype=torch.float64)
    by_h = gt_matches_batch_from_homography(k0, k1, homography[None], size, size, positive_px=3, negative_px=5)
    by_depth = depth_labels(k0, k1, depth0, depth1, T, positive_px=3, negative_px=5)
    assert (by_h["matches0"] >= 0).sum() > 50  # a real test: many positives
    assert torch.equal(by_depth["matches0"], by_h["matches0"])
    assert torch.equal(by_depth["matches1"], by_h["matches1"])


def test_unknown_depth_is_ignored_unless_the_other_view_finds_the_match():
    depth0, depth1, T, homography = scene()
    k0, k1 = keypoints(homography, seed=1)
    full = depth_labels(k0, k1, depth0, depth1, T)
    holes = depth0.clone()
    holes[:, : W // 2] = 0  # no depth on the left half of view 0
    labels = depth_labels(k0, k1, holes, depth1, T)
    left = torch.round(k0[0, :, 0]) < W // 2  # the depth lookup takes the nearest pixel
    positive = full["matches0"][0] >= 0
    # matches found from view 1's side survive; the other left points become "ignore", never "unmatched"
    assert torch.equal(labels["matches0"][0][left & positive], full["matches0"][0][left & positive])
    assert (labels["matches0"][0][left & ~positive] == IGNORE).all()
    assert torch.equal(labels["matches0"][0][~left], full["matches0"][0][~left])


def test_occluded_points_are_unmatched_even_with_a_keypoint_at_their_projection():
    depth0, depth1, T, homography = scene()
    k0, k1 = keypoints(homography, seed=2)
    occluded = depth1.clone()
    occluded[30:90, 40:120] = 2.0  # something in front of the plane in view 1
    full = depth_labels(k0, k1, depth0, depth1, T)
    labels = depth_labels(k0, k1, depth0, occluded, T)
    warped = torch.cat([k0[0], torch.ones(k0.shape[1], 1, dtype=torch.float64)], 1) @ homography.T
    p = torch.round(warped[:, :2] / warped[:, 2:])
    behind = (p[:, 0] >= 40) & (p[:, 0] < 120) & (p[:, 1] >= 30) & (p[:, 1] < 90)
    near = (p[:, 0] >= 36) & (p[:, 0] < 124) & (p[:, 1] >= 26) & (p[:, 1] < 94)  # a noisy partner may be inside
    assert ((full["matches0"][0] >= 0) & behind).sum() > 10
    assert (labels["matches0"][0][behind] == UNMATCHED).all()
    away = ~near & (full["matches0"][0] >= 0)
    assert away.sum() > 30 and torch.equal(labels["matches0"][0][away], full["matches0"][0][away])
