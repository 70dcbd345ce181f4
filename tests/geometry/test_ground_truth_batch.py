"""geometry.gt_matches_batch_from_homography: labels of batches, highlights labelled unmatched."""

import math

import torch

from specglue.geometry import IGNORE, UNMATCHED, gt_matches_batch_from_homography, gt_matches_pair_from_homography, warp_points


def homography(angle_deg: float = 10.0, shift=(20.0, -10.0), scale: float = 1.1) -> torch.Tensor:
    a = math.radians(angle_deg)
    return torch.tensor([[scale * math.cos(a), -scale * math.sin(a), shift[0]],
                         [scale * math.sin(a), scale * math.cos(a), shift[1]],
                         [1e-4, 0.0, 1.0]], dtype=torch.float64)


def scene(seed: int = 0):
    """30 keypoints of image 0 (inside the overlap), their projections with 0.5 px noise in a
    shuffled order, plus 10 unrelated keypoints in image 1."""
    g = torch.Generator().manual_seed(seed)
    H = homography()
    kpts0 = 100 + 300 * torch.rand(30, 2, generator=g, dtype=torch.float64)
    true1 = warp_points(kpts0, H) + 0.5 * (torch.rand(30, 2, generator=g, dtype=torch.float64) - 0.5)
    order = torch.randperm(30, generator=g)
    extra = torch.tensor([[5.0 + 60 * k, 470.0] for k in range(10)], dtype=torch.float64)
    kpts1 = torch.cat([true1[order], extra])
    truth = torch.argsort(order)  # keypoint i of image 0 is keypoint truth[i] of image 1
    return kpts0[None].float(), kpts1[None].float(), H[None], truth


SIZE = torch.tensor([[640.0, 480.0]])


def test_projections_are_matches_and_unrelated_points_unmatched():
    kpts0, kpts1, H, truth = scene()
    gt = gt_matches_batch_from_homography(kpts0, kpts1, H, SIZE, SIZE)
    assert torch.equal(gt["matches0"][0], truth)
    assert torch.equal(gt["matches1"][0, truth], torch.arange(30))
    assert (gt["matches1"][0, 30:] == UNMATCHED).all()


def test_ignore_band_outside_points_padding_and_highlights():
    kpts0, kpts1, H, truth = scene()
    kpts1 = kpts1.clone()
    kpts1[0, truth[0]] += torch.tensor([4.0, 0.0])  # 4 px off: inside the 3-5 px band
    kpts0 = torch.cat([kpts0, torch.tensor([[[-200.0, 50.0]]])], 1)  # projects outside image 1
    valid0 = torch.ones(1, 31, dtype=torch.bool)
    covered1 = torch.zeros(1, 40, dtype=torch.bool)
    covered1[0, truth[1]] = True  # a highlight hides keypoint truth[1] of image 1
    gt = gt_matches_batch_from_homography(kpts0, kpts1, H, SIZE, SIZE, valid0=valid0, covered1=covered1,
                                          negative_px=5.0)
    m0, m1 = gt["matches0"][0], gt["matches1"][0]
    assert m0[0] == IGNORE and m1[truth[0]] == IGNORE
    assert m0[30] == UNMATCHED
    assert m1[truth[1]] == UNMATCHED  # covered: unmatched, never a positive
    assert m0[1] == UNMATCHED  # its partner is hidden, nothing else is near
    assert torch.equal(m0[2:30], truth[2:])

    valid0[0, 5] = False  # padding is ignored
    gt = gt_matches_batch_from_homography(kpts0, kpts1, H, SIZE, SIZE, valid0=valid0)
    assert gt["matches0"][0, 5] == IGNORE and gt["matches1"][0, truth[5]] == UNMATCHED


def test_batches_label_each_pair_alone():
    pairs = [scene(seed) for seed in (0, 1)]
    batch = [torch.cat([p[i] for p in pairs]) for i in range(3)]
    gt = gt_matches_batch_from_homography(*batch, SIZE.expand(2, 2), SIZE.expand(2, 2))
    for k, (kpts0, kpts1, H, truth) in enumerate(pairs):
        alone = gt_matches_batch_from_homography(kpts0, kpts1, H, SIZE, SIZE)
        assert torch.equal(gt["matches0"][k], alone["matches0"][0])
        assert torch.equal(gt["matches0"][k], truth)


def test_the_pair_function_is_the_batch_function_without_sizes():
    kpts0, kpts1, H, truth = scene(2)
    m0, m1 = gt_matches_pair_from_homography(kpts0[0].numpy(), kpts1[0].numpy(), H[0].numpy())
    gt = gt_matches_batch_from_homography(kpts0, kpts1, H)
    assert (m0 == gt["matches0"][0].numpy()).all() and (m1 == gt["matches1"][0].numpy()).all()
    empty0, empty1 = gt_matches_pair_from_homography(kpts0[0].numpy(), kpts1[0, :0].numpy(), H[0].numpy())
    assert (empty0 == UNMATCHED).all() and empty1.shape == (0,)
