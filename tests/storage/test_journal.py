"""specglue.storage: journal part files, merging through a shadow (SIGKILL-safe),
hloc's pair naming."""

from __future__ import annotations

import errno
import inspect
import itertools
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from specglue import storage
from specglue.storage import journal as journal_module
from specglue.storage import PartJournal, copy_group


def write_pair(f, name0, name1, n=4):
    storage.write_pair_matches(f, name0, name1, np.arange(n) - 1, np.linspace(0, 1, n))


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
    with storage.open_h5(tmp_path / "m.h5") as f:
        assert storage.read_settings(f) == {"run": 1}
        matches, scores = storage.read_matches(f, "seq/a.png", "seq/b.png")
        np.testing.assert_array_equal(matches, [[1, 0], [2, 1], [3, 2]])
        np.testing.assert_allclose(scores, np.linspace(0, 1, 4)[1:])
        assert storage.read_matches(f, "f.png", "e.png")[0].tolist() == [[0, 1], [1, 2]]  # reversed


def test_copy_group_creates_parents_and_replaces_what_is_there(tmp_path: Path):
    with h5py.File(tmp_path / "src.h5", "w") as src, h5py.File(tmp_path / "dst.h5", "w") as dst:
        write_pair(src, "séq/é.png", "ü.png", n=3)
        write_pair(dst, "séq/é.png", "ü.png", n=5)  # an older copy of the same pair
        write_pair(dst, "séq/é.png", "v.png", n=2)
        assert storage.leaf_groups(src, "matches0") == ["séq-é.png/ü.png"]
        copy_group(src, dst, "séq-é.png/ü.png")
        copy_group(src, dst, "séq-é.png/ü.png")
        assert storage.leaf_groups(dst, "matches0") == ["séq-é.png/v.png", "séq-é.png/ü.png"]
        assert storage.read_matches(dst, "séq/é.png", "ü.png")[0].tolist() == [[1, 0], [2, 1]]
        assert storage.leaf_groups(dst["séq-é.png"], "matches0") == ["v.png", "ü.png"]  # relative to a group


def test_hloc_pair_names_and_old_naming(tmp_path: Path):
    assert storage.names_to_pair("a/b.jpg", "c.jpg") == "a-b.jpg/c.jpg"
    with h5py.File(tmp_path / "old.h5", "w") as f:  # hloc's older "_" naming
        group = f.create_group("a.jpg_b.jpg")
        group["matches0"] = np.array([1, -1])
        group["matching_scores0"] = np.array([0.5, 0.0])
    with storage.open_h5(tmp_path / "old.h5") as f:
        assert storage.read_matches(f, "b.jpg", "a.jpg")[0].tolist() == [[1, 0]]
        with pytest.raises(KeyError, match="another list of pairs"):
            storage.read_matches(f, "a.jpg", "c.jpg")


def test_image_features_round_trip_in_hloc_layout(tmp_path: Path):
    rng = np.random.default_rng(0)
    feats = storage.ImageFeatures(keypoints=rng.random((7, 2), np.float32) * 100,
                                  descriptors=rng.random((7, 128), np.float32),
                                  scores=rng.random(7, np.float32), image_size=np.array([320, 240], np.float32),
                                  specularity=np.array([0, 1, 0, 0, 1, 0, 0], np.float32))
    with h5py.File(tmp_path / "f.h5", "w") as f:
        storage.write_image_features(f, "dir/img.png", feats)
        assert f["dir/img.png/descriptors"].shape == (128, 7)  # hloc stores [D, N]
    with storage.open_h5(tmp_path / "f.h5") as f:
        back = storage.read_image_features(f, "dir/img.png")
        assert storage.leaf_groups(f, "keypoints") == ["dir/img.png"]
    for key in ("keypoints", "descriptors", "scores", "image_size", "specularity"):
        np.testing.assert_array_equal(getattr(back, key), getattr(feats, key))
    view = back.to_view()
    assert view["keypoints"].shape == (1, 7, 2) and view["keypoint_specular"].shape == (1, 7)


# ---------------------------------------------------------------------- merging through the shadow
SETTINGS = {"run": 1}


def pair_data(i, n=8):
    """Pair i's matches0 / matching_scores0, the same in every process."""
    return ((np.arange(n) + i) % 50 - 1).astype(np.int32), np.full(n, i / 1000, np.float32)


def pair_key(i):
    return f"img{i}.png/img{i + 1}.png"


def write_pairs(journal, indices):
    journal.write_part(SETTINGS, lambda f: [storage.write_pair_matches(f, f"img{i}.png", f"img{i + 1}.png",
                                                                       *pair_data(i)) for i in indices])


def read_all(path: Path) -> dict:
    """Every pair of a matches file: group name -> (matches0, matching_scores0)."""
    with storage.open_h5(path) as f:
        return {key: (f[key]["matches0"][()], f[key]["matching_scores0"][()])
                for key in storage.leaf_groups(f, "matches0")}


def assert_holds(path: Path, indices):
    """The matches file holds exactly the pairs ``indices``, each whole and right."""
    stored = read_all(path)
    assert sorted(stored) == sorted(pair_key(i) for i in indices)
    for i in indices:
        expected = pair_data(i)
        np.testing.assert_array_equal(stored[pair_key(i)][0], expected[0], err_msg=pair_key(i))
        np.testing.assert_array_equal(stored[pair_key(i)][1], expected[1], err_msg=pair_key(i))


def generation(path: Path) -> str:
    with h5py.File(path, "r") as f:
        return f.attrs[journal_module.GENERATION_ATTR]


@pytest.fixture
def copies(monkeypatch) -> list:
    """The files ``shutil.copyfile`` copies (the whole-output copies of a merge)."""
    copied = []
    real = shutil.copyfile

    def counting(src, dst, **kwargs):
        copied.append(Path(src))
        return real(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", counting)
    return copied


def test_merges_append_to_the_shadow_instead_of_copying_the_output(tmp_path: Path, copies):
    out = tmp_path / "m.h5"
    journal = PartJournal(out, "matches0", "matches file")
    inodes, generations = [], []
    for merge in range(3):
        write_pairs(journal, range(10 * merge, 10 * merge + 5))
        write_pairs(journal, range(10 * merge + 5, 10 * merge + 10))
        journal.merge(SETTINGS)
        assert_holds(out, range(10 * merge + 10))
        assert read_all(journal.shadow_path).keys() == read_all(out).keys()
        assert generation(journal.shadow_path) == generation(out)
        inodes.append((out.stat().st_ino, journal.shadow_path.stat().st_ino))
        generations.append(generation(out))
    assert copies == []  # not even once: the first merge writes both files from the parts
    # the two files swap roles at each merge: the shadow becomes the output and the old output the shadow
    assert inodes[1] == inodes[0][::-1] and inodes[2] == inodes[0]
    assert len(set(generations)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.h5.shadow", "m.h5"]
    with storage.open_h5(out) as f:
        assert storage.read_settings(f) == SETTINGS


@pytest.mark.parametrize("damage", ["garbage", "missing", "older_generation", "edited_output"])
def test_a_stale_or_corrupt_shadow_is_rebuilt_from_the_output(tmp_path: Path, copies, damage: str):
    out = tmp_path / "m.h5"
    journal = PartJournal(out, "matches0", "matches file")
    write_pairs(journal, range(5))
    journal.merge(SETTINGS)
    older_shadow = journal.shadow_path.read_bytes()
    write_pairs(journal, range(5, 10))
    journal.merge(SETTINGS)
    expected = list(range(10))
    if damage == "garbage":
        journal.shadow_path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "missing":
        journal.shadow_path.unlink()
    elif damage == "older_generation":  # e.g. a shadow restored from a backup
        journal.shadow_path.write_bytes(older_shadow)
    else:  # someone (hloc) added a pair to the output itself: it must survive the next merge
        with h5py.File(out, "a") as f:
            storage.write_pair_matches(f, "img99.png", "img100.png", *pair_data(99))
        expected.append(99)
    write_pairs(journal, range(10, 15))
    journal.merge(SETTINGS)
    assert copies == [out]
    assert_holds(out, expected + list(range(10, 15)))
    assert read_all(journal.shadow_path).keys() == read_all(out).keys()
    write_pairs(journal, range(15, 20))
    journal.merge(SETTINGS)  # the rebuilt shadow is used again
    assert copies == [out]
    assert_holds(out, expected + list(range(10, 20)))


def test_without_hard_links_every_merge_copies_the_output(tmp_path: Path, copies, monkeypatch, caplog):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    out = tmp_path / "m.h5"
    journal = PartJournal(out, "matches0", "matches file")
    with caplog.at_level(logging.INFO, logger=journal_module.__name__):
        for merge in range(4):
            write_pairs(journal, range(5 * merge, 5 * merge + 5))
            journal.merge(SETTINGS)
            assert_holds(out, range(5 * merge + 5))
    assert copies == [out, out]  # once the first merge's shadow is used, each merge copies the output
    assert sum("cannot hard-link" in r.getMessage() for r in caplog.records) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]


READER = textwrap.dedent("""
    import sys, h5py
    with h5py.File(sys.argv[1], "r") as f:
        print("open", flush=True)
        sys.stdin.readline()
        print(sorted(f["img0.png"]), f["img0.png/img1.png/matches0"][()].tolist(), flush=True)
""")


@pytest.mark.skipif(os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE",
                    reason="HDF5's file lock is what keeps the merge off a file a reader holds")
def test_a_reader_holding_the_output_open_keeps_the_previous_file(tmp_path: Path, copies, caplog):
    out = tmp_path / "m.h5"
    journal = PartJournal(out, "matches0", "matches file")
    write_pairs(journal, [0])
    journal.merge(SETTINGS)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        write_pairs(journal, [1, 2])
        with caplog.at_level(logging.WARNING, logger=journal_module.__name__):
            journal.merge(SETTINGS)  # HDF5's lock keeps it from writing the reader's file
        answer, _ = reader.communicate("go\n", timeout=60)
    finally:
        reader.kill()
    assert answer.strip() == f"['img1.png'] {pair_data(0)[0].tolist()}"
    assert any("could not bring the previous" in r.getMessage() for r in caplog.records)
    assert not journal.shadow_path.exists()
    assert_holds(out, [0, 1, 2])
    write_pairs(journal, [3])
    journal.merge(SETTINGS)
    assert copies == [out] and journal.shadow_path.is_file()
    assert_holds(out, [0, 1, 2, 3])


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the journal catches it."""


@pytest.mark.parametrize("with_shadow", [True, False])
def test_a_merge_stopped_before_any_file_operation_loses_nothing(tmp_path: Path, monkeypatch, with_shadow: bool):
    """Stop the merge before its 1st, 2nd, ... rename / link / copy / delete, until it runs through."""
    for stop_at in itertools.count():
        out = tmp_path / str(stop_at) / "m.h5"
        out.parent.mkdir()
        journal = PartJournal(out, "matches0", "matches file")
        write_pairs(journal, range(5))
        journal.merge(SETTINGS)
        if not with_shadow:
            journal.shadow_path.unlink()
        write_pairs(journal, range(5, 10))
        write_pairs(journal, range(10, 15))
        operations = [0]

        def stopping(function):
            def stop_or_run(*args, **kwargs):
                if operations[0] == stop_at:
                    raise Killed
                operations[0] += 1
                return function(*args, **kwargs)
            return stop_or_run

        finished = True
        with monkeypatch.context() as patch:
            for owner, name in ((os, "replace"), (os, "link"), (shutil, "copyfile"), (Path, "unlink")):
                patch.setattr(owner, name, stopping(getattr(owner, name)))
            try:
                journal.merge(SETTINGS)
            except Killed:
                finished = False
        stored = read_all(out)
        assert len(stored) in (5, 15)  # the previous output or the new one, whole
        assert_holds(out, range(len(stored)))
        rerun = PartJournal(out, "matches0", "matches file")
        assert rerun.done() == {pair_key(i) for i in range(15)}
        assert sorted(p.name for p in out.parent.iterdir() if p.name.endswith((".next", ".prev"))) == []
        write_pairs(rerun, range(15, 20))
        rerun.merge(SETTINGS)
        assert_holds(out, range(20))
        assert read_all(rerun.shadow_path).keys() == read_all(out).keys()
        if finished:
            break
    assert stop_at >= 6


MERGING_CHILD = "import numpy as np\n" + inspect.getsource(pair_data) + textwrap.dedent("""
    import sys
    from specglue import storage
    from specglue.storage import PartJournal, copy_group

    journal = PartJournal(sys.argv[1], "matches0", "matches file")
    start = len(journal.done())  # the pairs finished so far are 0 .. start - 1
    print("ready", flush=True)
    for part in range(start // 10, 10 ** 6):
        journal.write_part({"run": 1}, lambda f: [storage.write_pair_matches(
            f, f"img{i}.png", f"img{i + 1}.png", *pair_data(i)) for i in range(10 * part, 10 * part + 10)])
        print("wrote", 10 * part + 10, flush=True)
        print("merging", flush=True)
        journal.merge({"run": 1})
        print("merged", flush=True)
""")


def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path):
    out = tmp_path / "m.h5"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(0)
    written, kills, kills_in_merges = 0, 0, 0
    while kills < 5 or (kills_in_merges < 3 and kills < 15):
        child = subprocess.Popen([sys.executable, "-c", MERGING_CHILD, str(out)], stdout=subprocess.PIPE,
                                 text=True, env=env)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.8))
        assert child.poll() is None, "the child stopped before it was killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        lines = child.stdout.read().splitlines()
        child.stdout.close()
        kills += 1
        kills_in_merges += bool(lines) and lines[-1] == "merging"
        written = max([written] + [int(line.split()[1]) for line in lines if line.startswith("wrote")])
        if out.exists():  # whatever moment it was killed at, the output is whole
            assert_holds(out, range(len(read_all(out))))
        journal = PartJournal(out, "matches0", "matches file")
        done = journal.done()
        assert done >= {pair_key(i) for i in range(written)}
        journal.merge(SETTINGS)
        assert_holds(out, range(len(done)))
    assert written >= 100
