"""specglue.collection.journal and hloc_io: part files, merging, hloc's pair naming."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from specglue.collection import hloc_io
from specglue.collection.journal import PartJournal


def write_pair(f, name0, name1, n=4):
    hloc_io.write_pair_matches(f, name0, name1, np.arange(n) - 1, np.linspace(0, 1, n))


def test_parts_merge_into_one_file_with_nested_names(tmp_path: Path):
    journal = PartJournal(tmp_path / "m.h5", "matches0", "matches file")
    journal.write_part({"run": 1}, lambda f: write_pair(f, "seq/a.png", "seq/b.png"))
    journal.write_part({"run": 1}, lambda f: write_pair(f, "c.png", "d.png"))
    assert journal.done() == {"seq-a.png/seq-b.png", "c.png/d.png"}
    assert not (tmp_path / "m.h5").exists() and len(journal.parts()) == 2
    journal.merge({"run": 1})
    assert not journal.parts_dir.exists()
    journal.write_part({"run": 1}, lambda f: write_pair(f, "e.png", "f.png", n=3))
    (journal.parts_dir / "part-killed.h5.tmp").write_bytes(b"half a file")  # a killed write
    assert journal.done() == {"seq-a.png/seq-b.png", "c.png/d.png", "e.png/f.png"}
    assert not (journal.parts_dir / "part-killed.h5.tmp").exists()
    journal.merge({"run": 1})
    with hloc_io.open_h5(tmp_path / "m.h5") as f:
        assert hloc_io.read_settings(f) == {"run": 1}
        matches, scores = hloc_io.read_matches(f, "seq/a.png", "seq/b.png")
        np.testing.assert_array_equal(matches, [[1, 0], [2, 1], [3, 2]])
        np.testing.assert_allclose(scores, np.linspace(0, 1, 4)[1:])
        assert hloc_io.read_matches(f, "f.png", "e.png")[0].tolist() == [[0, 1], [1, 2]]  # reversed


def test_hloc_pair_names_and_old_naming(tmp_path: Path):
    assert hloc_io.names_to_pair("a/b.jpg", "c.jpg") == "a-b.jpg/c.jpg"
    with h5py.File(tmp_path / "old.h5", "w") as f:  # hloc's older "_" naming
        group = f.create_group("a.jpg_b.jpg")
        group["matches0"] = np.array([1, -1])
        group["matching_scores0"] = np.array([0.5, 0.0])
    with hloc_io.open_h5(tmp_path / "old.h5") as f:
        assert hloc_io.read_matches(f, "b.jpg", "a.jpg")[0].tolist() == [[1, 0]]
        with pytest.raises(KeyError, match="another list of pairs"):
            hloc_io.read_matches(f, "a.jpg", "c.jpg")


def test_image_features_round_trip_in_hloc_layout(tmp_path: Path):
    rng = np.random.default_rng(0)
    feats = hloc_io.ImageFeatures(keypoints=rng.random((7, 2), np.float32) * 100,
                                  descriptors=rng.random((7, 128), np.float32),
                                  scores=rng.random(7, np.float32), image_size=np.array([320, 240], np.float32),
                                  specularity=np.array([0, 1, 0, 0, 1, 0, 0], np.float32))
    with h5py.File(tmp_path / "f.h5", "w") as f:
        hloc_io.write_image_features(f, "dir/img.png", feats)
        assert f["dir/img.png/descriptors"].shape == (128, 7)  # hloc stores [D, N]
    with hloc_io.open_h5(tmp_path / "f.h5") as f:
        back = hloc_io.read_image_features(f, "dir/img.png")
        assert hloc_io.leaf_groups(f, "keypoints") == ["dir/img.png"]
    for key in ("keypoints", "descriptors", "scores", "image_size", "specularity"):
        np.testing.assert_array_equal(getattr(back, key), getattr(feats, key))
    view = back.to_view()
    assert view["keypoints"].shape == (1, 7, 2) and view["keypoint_specular"].shape == (1, 7)
