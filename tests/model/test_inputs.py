"""Bad input gets a clear error; empty and tiny inputs give clean results; checkpoints load or
fail with the file named."""

import pytest
import torch

from specglue import LightGlue
from specglue import weights as weights_registry


@pytest.fixture(scope="module")
def model():
    return LightGlue(features="aliked").eval()


def make_view(n, d=128, b=1, size=(640, 480), seed=0):
    g = torch.Generator().manual_seed(seed)
    kpts = torch.rand(b, n, 2, generator=g) * torch.tensor(size, dtype=torch.float32)
    desc = torch.nn.functional.normalize(torch.randn(b, n, d, generator=g), dim=-1)
    return {"keypoints": kpts, "descriptors": desc, "image_size": torch.tensor([size] * b, dtype=torch.float32)}


def run(model, view0, view1, **kw):
    with torch.inference_mode():
        return model({"image0": view0, "image1": view1}, **kw)


@pytest.mark.parametrize(
    "mutate, error, pattern",
    [
        (lambda d: d.pop("image0"), ValueError, "missing 'image0'"),
        (lambda d: d["image1"].pop("keypoints"), ValueError, r"data\['image1'\] is missing 'keypoints'"),
        (lambda d: d["image0"].pop("descriptors"), ValueError, "missing 'descriptors'"),
        (lambda d: d["image0"].update(descriptors=torch.rand(1, 50, 256)), ValueError,
         r"width 256 .*\[B, M, 128\]"),
        (lambda d: d["image0"].update(keypoints=torch.rand(1, 50, 3)), ValueError,
         r"keypoints'\] must have shape \[B, M, 2\], got \(1, 50, 3\)"),
        (lambda d: d["image0"].update(keypoints=torch.rand(50, 2)), ValueError, r"\[B, M, 2\]"),
        (lambda d: d["image1"].update(keypoints=torch.rand(2, 40, 2), descriptors=torch.rand(2, 40, 128)),
         ValueError, r"image1'\]\['keypoints'\] has size 2 on axis 0 \(B\)"),
        (lambda d: d["image0"].update(descriptors=torch.rand(1, 49, 128)), ValueError, "axis 1 .M."),
        (lambda d: d["image0"]["keypoints"].__setitem__((0, 3, 0), float("nan")), ValueError,
         r"image0'\]\['keypoints'\] contains NaN or Inf"),
        (lambda d: d["image1"]["descriptors"].__setitem__((0, 3, 0), float("inf")), ValueError,
         r"image1'\]\['descriptors'\] contains NaN or Inf"),
        (lambda d: d["image0"].pop("image_size"), ValueError, r"needs 'image_size' \[B, 2\]"),
        (lambda d: d["image0"].update(keypoints=d["image0"]["keypoints"].long()), TypeError, "float dtype"),
        (lambda d: d["image0"].update(keypoints=d["image0"]["keypoints"].numpy()), TypeError, "torch.Tensor"),
        (lambda d: d["image0"].update(keypoint_mask=torch.ones(1, 50)), TypeError, "keypoint_mask.*bool"),
    ],
)
def test_bad_input_names_the_key(model, mutate, error, pattern):
    data = {"image0": make_view(50), "image1": make_view(40, seed=1)}
    mutate(data)
    with pytest.raises(error, match=pattern):
        with torch.inference_mode():
            model(data)


def test_image_tensor_gives_the_size(model):
    view0, view1 = make_view(60), make_view(70, seed=1)
    by_size = run(model, view0, view1)
    for view in (view0, view1):
        view.pop("image_size")
        view["image"] = torch.zeros(1, 3, 480, 640)
    by_image = run(model, view0, view1)
    assert torch.equal(by_size["matches0"], by_image["matches0"])


@pytest.mark.parametrize("m, n", [(0, 30), (30, 0), (0, 0)])
def test_zero_keypoints_give_empty_matches(model, m, n):
    out = run(model, make_view(m), make_view(n, seed=1))
    assert out["matches0"].shape == (1, m) and out["matches1"].shape == (1, n)
    assert out["matching_scores0"].shape == (1, m) and out["matching_scores1"].shape == (1, n)
    assert out["matches"][0].shape == (0, 2) and out["scores"][0].shape == (0,)
    assert (out["matches0"] == -1).all() and (out["matches1"] == -1).all()


def test_one_keypoint_each_side_matches_itself(model):
    view = make_view(1)
    out = run(model, view, {k: v.clone() for k, v in view.items()})
    assert out["matches0"].shape == (1, 1)
    assert torch.isfinite(out["matching_scores0"]).all()
    # the same descriptor at the same place is the only candidate
    assert out["matches0"].tolist() in ([[0]], [[-1]])
    assert out["matches1"][0, 0] == out["matches0"][0, 0]


def test_unknown_option_and_features_are_rejected():
    with pytest.raises(ValueError, match="Unknown LightGlue option.*depth_confidance"):
        LightGlue(features=None, depth_confidance=0.9)
    with pytest.raises(ValueError, match="Unknown features 'orb'"):
        LightGlue(features="orb")
    with pytest.raises(ValueError, match="specular_mode"):
        LightGlue(features=None, specular_mode="maybe")


def test_user_options_override_the_preset():
    model = LightGlue(features="aliked", filter_threshold=0.5, n_layers=9)
    assert model.conf.filter_threshold == 0.5 and model.conf.input_dim == 128
    with pytest.raises(AttributeError):
        model.conf.filter_threshold = 0.2


def test_weights_none_means_the_presets_weights():
    """weights=None (e.g. an unset --weights option passed through) keeps the official weights;
    only features=None and weights=None give random weights."""
    official = LightGlue(features="aliked").state_dict()
    passed_none = LightGlue(features="aliked", weights=None).state_dict()
    assert all(torch.equal(official[k], passed_none[k]) for k in official)
    random = LightGlue(features=None, input_dim=128).state_dict()
    assert not torch.equal(random["input_proj.weight"], official["input_proj.weight"])


def test_corrupt_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "broken_lightglue.pth"
    good = weights_registry.resolve("aliked_lightglue").read_bytes()
    bad.write_bytes(good[: len(good) // 3])
    with pytest.raises(ValueError, match="broken_lightglue.pth"):
        LightGlue(features=None, input_dim=128, weights=str(bad))


def test_wrong_checkpoint_names_the_file():
    extractor_weights = weights_registry.resolve("aliked-n16")
    with pytest.raises(ValueError, match="aliked-n16.pth does not fit"):
        LightGlue(features=None, input_dim=128, weights=str(extractor_weights))
    # official ALIKED matcher weights into a SuperPoint-shaped (input_dim 256) model
    with pytest.raises(ValueError, match="input_proj"):
        LightGlue(features=None, weights=str(weights_registry.resolve("aliked_lightglue")))


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        LightGlue(features=None, weights=str(tmp_path / "nope.pth"))


def test_old_key_names_load_like_new_ones():
    """disk_lightglue.pth uses the pre-release `self_attn.N` names; a re-saved state dict with
    the new names must give the same model."""
    old = LightGlue(features="disk")
    raw = weights_registry.load_state_dict(weights_registry.resolve("disk_lightglue"))
    assert any(k.startswith("self_attn.0.") for k in raw)
    new = LightGlue(features=None, input_dim=128, weights=old.state_dict())
    for key, value in old.state_dict().items():
        assert torch.equal(value, new.state_dict()[key]), key


def test_state_dict_roundtrip_is_official_layout(tmp_path):
    model = LightGlue(features="aliked")
    path = tmp_path / "saved.pth"
    torch.save(model.state_dict(), path)
    official_keys = set(weights_registry.load_state_dict(weights_registry.resolve("aliked_lightglue")))
    assert set(model.state_dict()) - {"confidence_thresholds"} == official_keys
    reloaded = LightGlue(features=None, input_dim=128, weights=str(path))
    assert torch.equal(reloaded.log_assignment[3].final_proj.weight, model.log_assignment[3].final_proj.weight)


def test_offline_resolution_never_downloads(monkeypatch, tmp_path):
    monkeypatch.setenv("SPECGLUE_OFFLINE", "1")
    monkeypatch.setenv("SPECGLUE_CACHE", str(tmp_path))
    monkeypatch.setattr(weights_registry, "packaged_file", lambda name: None)
    with pytest.raises(FileNotFoundError, match="downloads are disabled"):
        weights_registry.resolve("superpoint_lightglue")
    cached = tmp_path / "superpoint_lightglue.pth"
    cached.write_bytes(b"x")
    assert weights_registry.resolve("superpoint_lightglue") == cached
