import pytest
import torch
import torch.nn.functional as F

from specglue.ops.filters import max_filter


@pytest.mark.parametrize("shape", [(9, 13), (2, 17, 11), (2, 3, 20, 31)])
@pytest.mark.parametrize("radius", [1, 2, 4])
def test_max_filter_equals_max_pool2d(shape, radius):
    # negative values: the border must not be padded with zeros
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(radius))
    h, w = shape[-2:]
    expected = F.max_pool2d(x.reshape(-1, 1, h, w), 2 * radius + 1, stride=1, padding=radius).reshape(shape)
    assert torch.equal(max_filter(x, radius), expected)


def test_max_filter_window_is_square_and_radius_zero_is_identity():
    x = torch.zeros(1, 9, 9)
    x[0, 4, 4] = 1.0
    out = max_filter(x, 2)
    assert out[0, 2:7, 2:7].eq(1).all() and out.sum() == 25
    assert max_filter(x, 0) is x
