"""Batches of pairs with different keypoint counts give, pair by pair, the single-pair result."""

import pytest
import torch

from specglue import LightGlue
from specglue.batching import pad_features

from ..conftest import pair_paths


@pytest.fixture(scope="module")
def three_pairs(reference_features, data_dir):
    """Three real pairs with different image sizes and keypoint counts."""
    specs = [("dsc", 1024, 640), ("sacre_coeur", 700, 512), ("laparoscopic", 400, 320)]
    pairs = []
    for name, max_kpts, side in specs:
        p0, p1 = pair_paths(data_dir, name)
        pairs.append((reference_features("aliked", p0, max_kpts, side),
                      reference_features("aliked", p1, max_kpts, side)))
    return pairs


@pytest.mark.slow
@pytest.mark.parametrize("adaptive", [True, False])
def test_batch_equals_single_runs(three_pairs, adaptive, batch_path):
    kw = {} if adaptive else {"depth_confidence": -1, "width_confidence": -1}
    model = LightGlue(features="aliked", **kw).eval()
    data = {"image0": pad_features([p[0] for p in three_pairs]),
            "image1": pad_features([p[1] for p in three_pairs])}
    counts = [p[0]["keypoints"].shape[1] for p in three_pairs]
    assert len(set(counts)) == 3  # really different sizes
    with torch.inference_mode():
        batched = model(data)
        singles = [model({"image0": p0, "image1": p1}) for p0, p1 in three_pairs]
    stops = [s["stop"] for s in singles]
    for k, single in enumerate(singles):
        m, n = single["matches0"].shape[1], single["matches1"].shape[1]
        assert torch.equal(batched["matches0"][k, :m], single["matches0"][0])
        assert torch.equal(batched["matches1"][k, :n], single["matches1"][0])
        assert (batched["matches0"][k, m:] == -1).all()
        torch.testing.assert_close(batched["matching_scores0"][k, :m], single["matching_scores0"][0],
                                   atol=1e-4, rtol=0)
        assert torch.equal(batched["matches"][k], single["matches"][0])
        assert int(batched["stops"][k]) == single["stop"]
        if adaptive:
            assert torch.equal(batched["prune0"][k, :m], single["prune0"][0])
    assert batched["stop"] == max(stops)
    if adaptive:  # per-pair early stopping: the easy pairs stop before the last layer
        assert min(stops) < model.conf.n_layers, stops
    else:
        assert stops == [model.conf.n_layers] * 3


@pytest.mark.slow
def test_lengths_equal_keypoint_mask(three_pairs, batch_path):
    model = LightGlue(features="aliked").eval()
    image0 = pad_features([p[0] for p in three_pairs])
    image1 = pad_features([p[1] for p in three_pairs])
    with torch.inference_mode():
        by_mask = model({"image0": image0, "image1": image1})
        for view in (image0, image1):
            view["lengths"] = view.pop("keypoint_mask").sum(1)
        by_lengths = model({"image0": image0, "image1": image1})
    assert torch.equal(by_mask["matches0"], by_lengths["matches0"])
