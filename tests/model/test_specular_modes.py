"""Specular masks inside the matcher: exact properties of each mode on real ALIKED features."""

import pytest
import torch

from specglue import LightGlue

from ..conftest import pair_paths
from specglue.batching import pad_features

OFF = {"depth_confidence": -1, "width_confidence": -1}


@pytest.fixture(scope="module")
def pair(reference_features, data_dir):
    p0, p1 = pair_paths(data_dir, "sacre_coeur")
    return reference_features("aliked", p0, 512, 512), reference_features("aliked", p1, 512, 512)


@pytest.fixture(scope="module")
def model():
    return LightGlue(features="aliked", mask_margin=0).eval()


def band_mask(view, x_lo, x_hi):
    """A pixel mask [1, H, W] covering the vertical band x in [x_lo, x_hi) of the image."""
    w, h = (int(v) for v in view["image_size"][0].tolist())
    mask = torch.zeros(1, h, w, dtype=torch.bool)
    mask[:, :, int(x_lo * w): int(x_hi * w)] = True
    return mask


def keypoints_in(view, mask):
    xy = view["keypoints"][0].round().long()
    return mask[0, xy[:, 1].clamp(0, mask.shape[1] - 1), xy[:, 0].clamp(0, mask.shape[2] - 1)]


def run(model, v0, v1, **kw):
    with torch.inference_mode():
        return model({"image0": v0, "image1": v1}, **kw)


def with_mask(view, mask):
    return {**view, "specular_mask": mask}


@pytest.mark.slow
@pytest.mark.parametrize("conf", [{}, OFF], ids=["adaptive", "full"])
def test_hard_mode_ignores_everything_about_masked_keypoints(pair, conf):
    model = LightGlue(features="aliked", mask_margin=0, **conf).eval()
    v0, v1 = pair
    m0, m1 = band_mask(v0, 0.3, 0.5), band_mask(v1, 0.5, 0.7)
    in0, in1 = keypoints_in(v0, m0), keypoints_in(v1, m1)
    assert in0.sum() > 20 and in1.sum() > 20
    base = run(model, with_mask(v0, m0), with_mask(v1, m1))
    # scramble descriptors and positions of the masked keypoints only
    g = torch.Generator().manual_seed(1)
    v0s, v1s = dict(v0), dict(v1)
    for view, inside, mask in ((v0s, in0, m0), (v1s, in1, m1)):
        desc, kpts = view["descriptors"].clone(), view["keypoints"].clone()
        desc[0, inside] = torch.nn.functional.normalize(torch.randn(int(inside.sum()), 128, generator=g), dim=-1)
        kpts[0, inside] += torch.rand(int(inside.sum()), 2, generator=g) * 10 - 5
        view.update(descriptors=desc, keypoints=kpts, keypoint_specular=inside[None])
    moved = run(model, v0s, v1s)
    assert torch.equal(base["matches0"], moved["matches0"])
    assert torch.equal(base["matches1"], moved["matches1"])
    torch.testing.assert_close(base["matching_scores0"], moved["matching_scores0"], atol=1e-5, rtol=0)
    assert base["stop"] == moved["stop"]
    # no masked keypoint is ever matched, and no one is matched to one
    assert (base["matches0"][0, in0] == -1).all() and (base["matches1"][0, in1] == -1).all()
    assert (base["matching_scores0"][0, in0] == 0).all()
    matched = base["matches0"][0][base["matches0"][0] > -1]
    assert not in1[matched].any()
    assert (base["matches0"] > -1).sum() > 30


@pytest.mark.slow
@pytest.mark.parametrize("conf", [OFF, {}], ids=["full", "adaptive"])
def test_hard_equals_filter(pair, conf):
    model = LightGlue(features="aliked", **conf).eval()
    v0, v1 = pair
    v0m, v1m = with_mask(v0, band_mask(v0, 0.2, 0.45)), with_mask(v1, band_mask(v1, 0.6, 0.8))
    hard = run(model, v0m, v1m, specular_mode="hard")
    filtered = run(model, v0m, v1m, specular_mode="filter")
    assert torch.equal(hard["matches0"], filtered["matches0"])
    assert torch.equal(hard["matches1"], filtered["matches1"])
    torch.testing.assert_close(hard["matching_scores0"], filtered["matching_scores0"], atol=1e-4, rtol=0)
    assert hard["stop"] == filtered["stop"]


@pytest.mark.parametrize("mode", ["hard", "cross", "soft", "filter"])
def test_all_masked_gives_empty_matches(model, pair, mode):
    v0, v1 = pair
    full = torch.ones(1, *band_mask(v0, 0, 1).shape[1:], dtype=torch.bool)
    out = run(model, with_mask(v0, full), v1, specular_mode=mode)
    assert (out["matches0"] == -1).all() and (out["matches1"] == -1).all()
    assert out["matches"][0].shape == (0, 2)
    for key in ("matching_scores0", "matching_scores1"):
        assert torch.isfinite(out[key]).all() and (out[key] == 0).all()


def test_mask_on_one_image_only(model, pair):
    v0, v1 = pair
    m1 = band_mask(v1, 0.0, 0.5)
    out = run(model, v0, with_mask(v1, m1))
    in1 = keypoints_in(v1, m1)
    assert (out["matches1"][0, in1] == -1).all()
    assert (out["matches1"][0, ~in1] > -1).sum() > 20
    assert (out["specularity0"] == 0).all() and (out["specularity1"][0, in1] == 1).all()


@pytest.mark.slow
def test_soft_mode_limits(pair):
    model = LightGlue(features="aliked", mask_margin=0, **OFF).eval()
    v0, v1 = pair
    m0 = band_mask(v0, 0.3, 0.6)
    spec = keypoints_in(v0, m0).float()[None]
    hard = run(model, with_mask(v0, m0), v1, specular_mode="hard")
    soft_one = run(model, {**v0, "keypoint_specular": spec}, v1, specular_mode="soft")
    assert torch.equal(hard["matches0"], soft_one["matches0"])  # s = 1 behaves like hard
    off = run(model, v0, v1, specular_mode="off")
    soft_zero = run(model, {**v0, "keypoint_specular": torch.zeros_like(spec)}, v1, specular_mode="soft")
    assert torch.equal(off["matches0"], soft_zero["matches0"])  # s = 0 changes nothing
    half = run(model, {**v0, "keypoint_specular": spec * 0.9}, v1, specular_mode="soft")
    inside = spec[0] > 0
    # a specularity of 0.9 lowers the scores of those points' matches
    assert half["matching_scores0"][0, inside].sum() < off["matching_scores0"][0, inside].sum()


def test_cross_mode_keeps_context_but_never_matches(model, pair):
    v0, v1 = pair
    m0 = band_mask(v0, 0.3, 0.6)
    in0 = keypoints_in(v0, m0)
    cross = run(model, with_mask(v0, m0), v1, specular_mode="cross")
    hard = run(model, with_mask(v0, m0), v1, specular_mode="hard")
    assert (cross["matches0"][0, in0] == -1).all()
    assert (cross["matches0"][0, ~in0] > -1).sum() > 20
    # the masked points still took part in self-attention, so the descriptors differ from hard
    assert not torch.equal(cross["matching_scores0"], hard["matching_scores0"])


def test_off_ignores_masks(model, pair):
    v0, v1 = pair
    plain = run(model, v0, v1)
    ignored = run(model, with_mask(v0, band_mask(v0, 0, 0.5)), v1, specular_mode="off")
    assert torch.equal(plain["matches0"], ignored["matches0"])


def test_mask_margin_grows_the_mask(pair):
    v0, v1 = pair
    m0 = band_mask(v0, 0.4, 0.5)
    tight = LightGlue(features="aliked", mask_margin=0).eval()
    wide = LightGlue(features="aliked", mask_margin=20).eval()
    s_tight = run(tight, with_mask(v0, m0), v1)["specularity0"]
    s_wide = run(wide, with_mask(v0, m0), v1)["specularity0"]
    assert (s_wide >= s_tight).all() and s_wide.sum() > s_tight.sum()
    x = v0["keypoints"][0, :, 0]
    w = float(v0["image_size"][0, 0])
    expected = (x.round() >= int(0.4 * w) - 20) & (x.round() < int(0.5 * w) + 20)
    assert torch.equal(s_wide[0] > 0, expected)


@pytest.mark.slow
def test_batched_masks_equal_single_runs(model, pair, reference_features, data_dir, batch_path):
    p0, p1 = pair_paths(data_dir, "laparoscopic")
    other = (reference_features("aliked", p0, 300, 320), reference_features("aliked", p1, 300, 320))
    pairs = [pair, other]
    masks0 = [band_mask(p[0], 0.3, 0.5) for p in pairs]
    singles = [run(model, with_mask(p[0], m), p[1]) for p, m in zip(pairs, masks0)]
    h = max(m.shape[1] for m in masks0)
    w = max(m.shape[2] for m in masks0)
    batch_mask = torch.zeros(2, h, w, dtype=torch.bool)
    for k, m in enumerate(masks0):
        batch_mask[k, : m.shape[1], : m.shape[2]] = m[0]
    image0 = {**pad_features([p[0] for p in pairs]), "specular_mask": batch_mask}
    out = run(model, image0, pad_features([p[1] for p in pairs]))
    for k, single in enumerate(singles):
        m = single["matches0"].shape[1]
        assert torch.equal(out["matches0"][k, :m], single["matches0"][0])


@pytest.mark.parametrize(
    "update, error, pattern",
    [
        ({"specular_mask": torch.zeros(1, 100, 100, dtype=torch.bool)}, ValueError,
         r"specular_mask'\] has shape \(1, 100, 100\) but image_size"),
        ({"specular_mask": torch.zeros(1, 384, 512, dtype=torch.uint8)}, TypeError, "specular_mask.*bool or float"),
        ({"specular_mask": torch.full((1, 384, 512), 2.0)}, ValueError, r"specular_mask'\] must lie in \[0, 1\]"),
        ({"keypoint_specular": torch.zeros(1, 7)}, ValueError, r"keypoint_specular'\] has size 7 on axis 1"),
        ({"keypoint_specular": -torch.ones(1, 1)}, ValueError, "keypoint_specular"),
    ],
)
def test_bad_specular_input(model, pair, update, error, pattern):
    v0, v1 = pair
    v0 = {**v0, "image_size": torch.tensor([[512.0, 384.0]])}
    with pytest.raises(error, match=pattern):
        run(model, {**v0, **update}, v1)


def test_unknown_mode_per_call(model, pair):
    with pytest.raises(ValueError, match="specular_mode must be one of"):
        run(model, *pair, specular_mode="strong")
