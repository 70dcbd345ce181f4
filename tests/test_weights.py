"""The checkpoint registry: lookup order, atomic downloads (from a local file:// URL, never
the network) and loading with weights_only."""

import pytest
import torch

from specglue import weights


def test_every_registry_entry_has_an_https_url():
    for checkpoint in weights.CHECKPOINTS.values():
        assert checkpoint.url.startswith("https://") and checkpoint.url.endswith(".pth")


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
    monkeypatch.setattr(weights, "packaged_weights_dir", lambda: None)
    entry = weights.CHECKPOINTS["aliked-t16"]
    monkeypatch.setitem(weights.CHECKPOINTS, "aliked-t16",
                        weights.Checkpoint(entry.name, source.as_uri(), entry.licence))
    path = weights.resolve("aliked-t16", allow_download=True)
    assert path == tmp_path / "aliked-t16.pth" and path.read_bytes() == source.read_bytes()


def test_unknown_name_and_nested_state_dicts():
    with pytest.raises(KeyError, match="Unknown checkpoint 'nope'"):
        weights.resolve("nope")
    disk = weights.load_state_dict(weights.resolve("disk-depth-save"), subkey="extractor")
    assert all(isinstance(v, torch.Tensor) for v in disk.values())
    with pytest.raises(ValueError, match="does not hold a state dict of tensors"):
        weights.load_state_dict(weights.resolve("disk-depth-save"))
