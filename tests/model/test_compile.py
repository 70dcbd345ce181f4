"""torch.compile of the layers gives the eager results, for new keypoint counts and padding."""

import pytest
import torch

from specglue import LightGlue, pad_features


def _view(n, seed):
    g = torch.Generator().manual_seed(seed)
    return {"keypoints": torch.rand(1, n, 2, generator=g) * 100, "descriptors": torch.randn(1, n, 32, generator=g),
            "image_size": torch.tensor([[100.0, 100.0]])}


@pytest.mark.slow
def test_compiled_layers_match_eager():
    torch.manual_seed(0)
    eager = LightGlue(features=None, input_dim=32, descriptor_dim=32, n_layers=2, num_heads=2).eval()
    compiled = LightGlue(features=None, input_dim=32, descriptor_dim=32, n_layers=2, num_heads=2,
                         weights=eager.state_dict()).eval().compile()
    inputs = [
        {"image0": _view(40, 0), "image1": _view(50, 1)},
        {"image0": _view(70, 2), "image1": _view(33, 3)},  # new counts: dynamic shapes
        {"image0": pad_features([_view(30, 4), _view(45, 5)]),  # padded batch: masked attention
         "image1": pad_features([_view(38, 6), _view(20, 7)])},
    ]
    with torch.inference_mode():
        for data in inputs:
            a, b = eager(data), compiled(data)
            assert torch.equal(a["matches0"], b["matches0"])
            torch.testing.assert_close(a["matching_scores0"], b["matching_scores0"], atol=1e-5, rtol=0)
