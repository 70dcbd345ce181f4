"""specglue.collection.match: hloc matches files, resumable after SIGKILL, on Ray too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from specglue import LightGlue
from specglue import storage
from specglue.collection.match import MatchSettings, match_pairs
from specglue.collection.pairs import exhaustive_pairs, image_names, sequential_pairs, write_pairs
from specglue.confs import PIPELINE_SPECULAR_MODE

pytestmark = pytest.mark.slow


def read_all(path: Path) -> dict:
    """Every pair of a matches file: group name -> (matches0, matching_scores0)."""
    with storage.open_h5(path) as f:
        return {key: (f[key]["matches0"][()], f[key]["matching_scores0"][()])
                for key in storage.leaf_groups(f, "matches0")}


# Scores of two runs agree up to summation order: each process (and thread count) measures its
# own fastest CPU kernels (ops/kernels.py), which differ by rounding only; where a token's
# confidence sits at the pruning threshold, that rounding can prune one keypoint more or less,
# which moves a few scores of the pair by ~1e-3 (seen: 1.05e-3) and leaves the matches as they are.
SCORE_ATOL = 5e-3


def assert_same_matches(a: dict, b: dict) -> None:
    """The same matches; scores equal up to rounding (:data:`SCORE_ATOL`)."""
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key][0], b[key][0], err_msg=key)
        np.testing.assert_allclose(a[key][1], b[key][1], rtol=0, atol=SCORE_ATOL, err_msg=key)


@pytest.fixture(scope="module")
def reference_run(lap_features: Path, tmp_path_factory) -> tuple:
    """Exhaustive pairs of the 12 frames matched in one uninterrupted run."""
    folder = tmp_path_factory.mktemp("reference")
    pairs = write_pairs(exhaustive_pairs(image_names(lap_features)), folder / "pairs.txt")
    out = folder / "matches.h5"
    summary = match_pairs(lap_features, pairs, out, batch_size=4, progress=False)
    return pairs, out, summary


def test_matches_are_the_matchers_in_hloc_layout(lap_features: Path, reference_run):
    pairs, out, summary = reference_run
    assert summary["pairs"] == summary["matched"] == 66
    with storage.open_h5(lap_features) as f:
        feats0 = storage.read_image_features(f, "frame_00.png")
        feats1 = storage.read_image_features(f, "frame_01.png")
    matcher = LightGlue(features="aliked").eval()
    with torch.inference_mode():
        pred = matcher({"image0": feats0.to_view(), "image1": feats1.to_view()},
                       specular_mode=PIPELINE_SPECULAR_MODE)
    with storage.open_h5(out) as f:
        group = f["frame_00.png/frame_01.png"]  # hloc's names_to_pair
        np.testing.assert_array_equal(group["matches0"][()], pred["matches0"][0].numpy())
        np.testing.assert_allclose(group["matching_scores0"][()], pred["matching_scores0"][0].numpy(),
                                   rtol=0, atol=SCORE_ATOL)
        matches, scores = storage.read_matches(f, "frame_01.png", "frame_00.png")  # reversed lookup
        settings = storage.read_settings(f)
    np.testing.assert_array_equal(matches[:, ::-1], pred["matches"][0].numpy())
    assert len(matches) > 50
    assert settings["matching"]["features"] == "aliked"
    assert settings["matching"]["specular_mode"] == PIPELINE_SPECULAR_MODE == "cross"


def test_specular_mode_changes_matches_on_highlights(lap_features: Path, tmp_path: Path):
    pairs = [("frame_00.png", "frame_01.png")]
    off = read_all(match_pairs(lap_features, pairs, tmp_path / "off.h5",
                               settings=MatchSettings(specular_mode="off"), progress=False)["path"])
    hard = read_all(match_pairs(lap_features, pairs, tmp_path / "hard.h5", progress=False)["path"])
    with storage.open_h5(lap_features) as f:
        specular0 = storage.read_image_features(f, "frame_00.png").specularity >= 0.5
    matched_off, matched_hard = off["frame_00.png/frame_01.png"][0] >= 0, hard["frame_00.png/frame_01.png"][0] >= 0
    assert (matched_off & specular0).sum() > 0
    assert (matched_hard & specular0).sum() == 0


def test_rerun_matches_only_the_missing_pairs(lap_features: Path, reference_run, tmp_path: Path):
    _, reference, _ = reference_run
    names = image_names(lap_features)
    out = tmp_path / "matches.h5"
    first = match_pairs(lap_features, sequential_pairs(names, 1), out, progress=False)
    assert first["matched"] == 11
    # the whole list again, some pairs reversed and repeated: only the 55 new ones are matched
    pairs = exhaustive_pairs(names)
    pairs = [(b, a) if i % 3 == 0 else (a, b) for i, (a, b) in enumerate(pairs)] + pairs[:5]
    second = match_pairs(lap_features, pairs, out, progress=False)
    assert (second["pairs"], second["matched"], second["skipped"]) == (66, 55, 11)
    stored, expected = read_all(out), read_all(reference)
    assert len(stored) == 66
    for key in stored:  # a pair asked reversed is matched (and stored) that way round
        if key in expected:
            np.testing.assert_array_equal(stored[key][0], expected[key][0], err_msg=key)
        else:
            name1, name0 = key.split("/")
            assert f"{name0}/{name1}" in expected


KILLABLE_RUN = textwrap.dedent("""
    import sys
    from specglue.collection.match import match_pairs
    match_pairs(sys.argv[1], sys.argv[2], sys.argv[3], batch_size=2, flush_pairs=2, flush_seconds=0,
                progress=False)
""")


def test_sigkill_then_rerun_gives_the_uninterrupted_matches(lap_features: Path, reference_run, tmp_path: Path):
    pairs, reference, _ = reference_run
    out = tmp_path / "matches.h5"
    parts = tmp_path / "matches.h5.parts"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for kill_after_parts in (3, 9):  # two runs killed at different points
        proc = subprocess.Popen([sys.executable, "-c", KILLABLE_RUN, str(lap_features), str(pairs), str(out)],
                                env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if parts.is_dir() and len(list(parts.glob("part-*.h5"))) >= kill_after_parts:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # what it left is readable: every part, no output yet (it is only written whole)
        assert not out.exists()
        finished = 0
        for part in parts.glob("part-*.h5"):
            with h5py.File(part, "r") as f:
                finished += len(storage.leaf_groups(f, "matches0"))
        assert finished >= 2 * (kill_after_parts - 1)
    rerun = match_pairs(lap_features, pairs, out, progress=False)
    assert rerun["skipped"] >= 16 and rerun["matched"] == 66 - rerun["skipped"]
    assert not parts.exists()
    assert_same_matches(read_all(out), read_all(reference))


def test_ray_engine_gives_identical_matches(lap_features: Path, reference_run, tmp_path: Path):
    pytest.importorskip("ray")
    from specglue.collection.engine import RayEngine

    pairs, reference, _ = reference_run
    engine = RayEngine(num_workers=2)
    try:
        summary = match_pairs(lap_features, pairs, tmp_path / "ray.h5", batch_size=4, engine=engine,
                              progress=False)
    finally:
        engine.close()
    assert summary["matched"] == 66
    assert_same_matches(read_all(tmp_path / "ray.h5"), read_all(reference))


def test_extractor_mismatch_and_bad_inputs_are_refused(lap_features: Path, reference_run, tmp_path: Path):
    pairs, reference, _ = reference_run
    with pytest.raises(ValueError, match="holds aliked features but the matcher was asked for disk"):
        match_pairs(lap_features, pairs, tmp_path / "m.h5", settings=MatchSettings(features="disk"),
                    progress=False)
    # the rotation-aware weights need ALIKED-n16rot descriptors; this file has the default n16
    with pytest.raises(ValueError, match=r"extracted with \{'model_name': 'aliked-n16'\} but weights 'aliked_rot'"):
        match_pairs(lap_features, pairs, tmp_path / "m.h5", settings=MatchSettings(weights="aliked_rot"),
                    progress=False)
    # an hloc file (no specglue settings) must name its extractor
    hloc_file = tmp_path / "hloc_features.h5"
    with h5py.File(lap_features, "r") as src, h5py.File(hloc_file, "w") as dst:
        for name in ("frame_00.png", "frame_01.png"):
            src.copy(src[name], dst, name)
    with pytest.raises(ValueError, match="does not say which extractor made it"):
        match_pairs(hloc_file, [("frame_00.png", "frame_01.png")], tmp_path / "m.h5", progress=False)
    with pytest.raises(ValueError, match="128-d descriptors but LightGlue for superpoint expects 256-d"):
        match_pairs(hloc_file, [("frame_00.png", "frame_01.png")], tmp_path / "m.h5",
                    settings=MatchSettings(features="superpoint"), progress=False)
    ok = match_pairs(hloc_file, [("frame_00.png", "frame_01.png")], tmp_path / "m.h5",
                     settings=MatchSettings(features="aliked"), progress=False)
    assert ok["matched"] == 1
    # a pair naming an image the features file lacks
    bad_pairs = tmp_path / "bad.txt"
    bad_pairs.write_text("frame_00.png frame_01.png\nframe_00.png frame_99.png\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: image 'frame_99.png' is not among the images of the features file"):
        match_pairs(lap_features, bad_pairs, tmp_path / "m2.h5", progress=False)
    # a truncated matches file is reported, and left as it was
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(reference.read_bytes()[:2048])
    with pytest.raises(ValueError, match="cannot read the matches file .*truncated.h5.*--overwrite"):
        match_pairs(lap_features, pairs, truncated, progress=False)
    assert truncated.stat().st_size == 2048
    # a run with other settings does not mix into an existing file
    before = reference.read_bytes()
    with pytest.raises(ValueError, match="other settings .*specular_mode"):
        match_pairs(lap_features, pairs, reference, settings=MatchSettings(specular_mode="off"), progress=False)
    assert reference.read_bytes() == before


def test_an_hloc_matches_file_is_not_extended(lap_features: Path, tmp_path: Path):
    out = tmp_path / "hloc_matches.h5"
    with h5py.File(out, "w") as f:  # as hloc writes it: no specglue settings
        storage.write_pair_matches(f, "frame_00.png", "frame_01.png", np.full(5, -1), np.zeros(5))
    before = out.read_bytes()
    with pytest.raises(ValueError, match="was not written by specglue"):
        match_pairs(lap_features, [("frame_00.png", "frame_02.png")], out, progress=False)
    assert out.read_bytes() == before


def test_a_speed_preset_sets_precision_and_exits_and_is_recorded(lap_features: Path, reference_run, tmp_path: Path):
    from specglue.presets import get_preset, matcher_precision

    fast = MatchSettings.from_preset("fast", specular_mode="off")
    preset = get_preset("fast")
    assert (fast.precision, fast.depth_confidence, fast.width_confidence, fast.filter_threshold) == (
        matcher_precision("cpu"), preset.depth_confidence, preset.width_confidence, preset.filter_threshold)
    assert fast.specular_mode == "off"
    matcher = fast.build()
    assert matcher.conf.int8 == (fast.precision == "int8") and matcher.conf.mp == (fast.precision == "bf16")
    # accurate is the default settings: files made before presets existed keep their fingerprint
    assert MatchSettings.from_preset("accurate") == MatchSettings()
    assert "precision" not in MatchSettings().to_dict()
    with pytest.raises(ValueError, match="precision must be one of"):
        MatchSettings(precision="fp8")

    pairs, reference, _ = reference_run
    out = tmp_path / "fast.h5"
    match_pairs(lap_features, pairs, out, settings=MatchSettings.from_preset("fast"), batch_size=4, progress=False)
    exact, quick = read_all(reference), read_all(out)
    assert sorted(exact) == sorted(quick)
    # the fast precision matches nearly as fp32 does, and differs where it is not fp32
    agree = [np.mean(exact[k][0] == quick[k][0]) for k in exact]
    assert np.mean(agree) > 0.85
    if fast.precision != "fp32":
        with storage.open_h5(out) as f:
            assert storage.read_settings(f)["matching"]["precision"] == fast.precision
        with pytest.raises(ValueError, match="other settings .*precision"):
            match_pairs(lap_features, pairs, out, progress=False)
