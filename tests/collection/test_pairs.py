"""Pair lists: exhaustive, sequential (window, quadratic, loop closure), the pairs file."""

import pytest

from specglue.collection.pairs import exhaustive_pairs, read_pairs, sequential_pairs, write_pairs

FRAMES = [f"f{i:03d}.png" for i in range(10)]


def test_exhaustive_is_every_unordered_pair_once():
    pairs = exhaustive_pairs(FRAMES[:4])
    assert pairs == [("f000.png", "f001.png"), ("f000.png", "f002.png"), ("f000.png", "f003.png"),
                     ("f001.png", "f002.png"), ("f001.png", "f003.png"), ("f002.png", "f003.png")]
    assert len(exhaustive_pairs(FRAMES)) == 45


def index_pairs(pairs):
    return {(FRAMES.index(a), FRAMES.index(b)) for a, b in pairs}


def test_sequential_window():
    got = index_pairs(sequential_pairs(FRAMES, window=2))
    assert got == {(i, i + d) for i in range(10) for d in (1, 2) if i + d < 10}


def test_quadratic_adds_powers_of_two_beyond_the_window():
    got = index_pairs(sequential_pairs(FRAMES, window=1, quadratic=True))
    assert got == {(i, i + d) for i in range(10) for d in (1, 2, 4, 8) if i + d < 10}


def test_loop_every_pairs_all_keyframes():
    got = index_pairs(sequential_pairs(FRAMES, window=1, loop_every=4))
    assert {(0, 4), (0, 8), (4, 8)} <= got
    assert got - {(i, i + 1) for i in range(9)} == {(0, 4), (0, 8), (4, 8)}


def test_sequential_checks_its_arguments():
    with pytest.raises(ValueError, match="window"):
        sequential_pairs(FRAMES, window=0)
    with pytest.raises(ValueError, match="loop_every"):
        sequential_pairs(FRAMES, window=1, loop_every=1)
    with pytest.raises(ValueError, match="appears twice"):
        sequential_pairs(["a", "b", "a"], window=1)


def test_file_round_trip_and_errors(tmp_path):
    pairs = sequential_pairs(FRAMES, window=3, quadratic=True)
    path = write_pairs(pairs, tmp_path / "pairs.txt")
    assert read_pairs(path, known=FRAMES) == pairs
    assert not (tmp_path / "pairs.txt.tmp").exists()
    bad = tmp_path / "bad.txt"
    bad.write_text("# comment\nf000.png f001.png\nf000.png\n")
    with pytest.raises(ValueError, match=r"bad.txt:3: expected two image names"):
        read_pairs(bad)
    bad.write_text("f000.png other.png\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: image 'other.png' is not among the images"):
        read_pairs(bad, known=FRAMES)
    with pytest.raises(ValueError, match="does not exist"):
        read_pairs(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="white space"):
        write_pairs([("a b.png", "c.png")], tmp_path / "x.txt")


def test_image_names_of_a_folder_and_a_features_file(tmp_path):
    import h5py
    import numpy as np

    from specglue.collection.pairs import image_names

    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    for name in ("b.jpg", "sub/a.png"):
        (tmp_path / "imgs" / name).write_bytes(b"x")
    assert image_names(tmp_path / "imgs") == ["b.jpg", "sub/a.png"]
    with h5py.File(tmp_path / "f.h5", "w") as f:  # hloc's layout: names with '/' nest groups
        for name in ("sub/a.png", "b.jpg"):
            f.create_dataset(f"{name}/keypoints", data=np.zeros((3, 2)))
    assert image_names(tmp_path / "f.h5") == ["b.jpg", "sub/a.png"]
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="cannot read the features file"):
        image_names(tmp_path / "bad.h5")
    with pytest.raises(ValueError, match="neither an image folder"):
        image_names(tmp_path / "nope")
