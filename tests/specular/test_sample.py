"""The one dilation and the one mask sampler: square windows, nearest pixel, the border rule."""

import torch

from specglue.specular.sample import dilate_mask, sample_mask


def test_dilation_is_a_square_window_that_does_not_grow_in_from_the_border():
    mask = torch.zeros(1, 9, 9, dtype=torch.bool)
    mask[0, 4, 4] = True
    grown = dilate_mask(mask, 2)
    assert grown.dtype == torch.bool and grown[0, 2:7, 2:7].all() and int(grown.sum()) == 25
    assert torch.equal(dilate_mask(mask, 0), mask)
    soft = torch.zeros(1, 5, 5)
    soft[0, 0, 0] = 0.6
    assert torch.allclose(dilate_mask(soft, 1)[0, :2, :2], torch.full((2, 2), 0.6))
    assert float(dilate_mask(soft, 1)[0, 2:].sum()) == 0.0
    # eroding through the complement: pixels outside the image do not count as unmasked
    full = torch.ones(1, 4, 4, dtype=torch.bool)
    assert (~dilate_mask(~full, 1)).all()


def test_keypoints_take_their_nearest_pixel_clamped_to_the_image():
    mask = torch.zeros(1, 4, 6)
    mask[0, 1, 2] = 1.0
    mask[0, 3, 5] = 0.5
    kpts = torch.tensor([[[2.4, 0.6], [2.6, 1.0], [5.5, 3.5], [-0.5, -0.5], [9.0, 9.0]]])
    assert sample_mask(mask, kpts).tolist() == [[1.0, 0.0, 0.5, 0.0, 0.5]]
    # within one pixel of the highlight with a 1 px margin
    assert sample_mask(mask, kpts, margin=1)[0, :2].tolist() == [1.0, 1.0]
    assert sample_mask(mask.bool(), kpts).dtype == torch.float32
