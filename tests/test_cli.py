"""The real `specglue` entry point, run in a subprocess."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

GRAF = "06_oxford_graffiti_homography"


def specglue(*args, cwd=None):
    exe = shutil.which("specglue", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "specglue.cli"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("pair")
    paths = []
    for name in ("img1.png", "img2.png"):
        image = cv2.imread(str(data_dir / GRAF / name))
        image = cv2.resize(image, (400, 320), interpolation=cv2.INTER_AREA)
        paths.append(folder / name)
        cv2.imwrite(str(paths[-1]), image)
    return paths


def test_help_explains_every_command():
    out = specglue("--help")
    assert out.returncode == 0
    for command in ("match", "detect-specular", "demo"):
        assert command in out.stdout
    match_help = specglue("match", "--help").stdout
    for flag in ("--features", "--mask0", "--specular", "--specular-mode", "--geometry", "--out", "--viz"):
        assert flag in match_help


@pytest.mark.slow
def test_match_writes_what_it_prints(small_pair, tmp_path):
    out_npz, out_json, viz = tmp_path / "m.npz", tmp_path / "m.json", tmp_path / "m.png"
    run = specglue("match", *small_pair, "--geometry", "homography", "--out", out_npz, "--viz", viz,
                   "--max-keypoints", "512", "--resize", "0")
    assert run.returncode == 0, run.stderr
    printed = dict(kv.split("=") for kv in run.stdout.splitlines()[0].split())
    saved = np.load(out_npz)
    assert int(printed["matches"]) == len(saved["matches"]) > 50
    assert int(printed["inliers"]) == int(saved["inliers"].sum())
    assert saved["model"].shape == (3, 3)
    assert cv2.imread(str(viz)) is not None
    run = specglue("match", *small_pair, "--specular", "none", "--out", out_json, "--max-keypoints", "512")
    assert run.returncode == 0, run.stderr
    data = json.loads(out_json.read_text())
    assert data["summary"]["matches"] == len(data["matches"])
    assert data["config"]["specular"] is None and data["config"]["specular_mode"] == "cross"
    run = specglue("match", *small_pair, "--specular", "none", "--mask0", small_pair[0])
    assert run.returncode == 1 and "--specular none contradicts --mask0/--mask1" in run.stderr


def test_detect_specular_writes_a_mask(tmp_path):
    image = np.full((120, 160, 3), 90, np.uint8)
    image[50:56, 70:78] = 255  # a glint: 0.25 % of the image (the detector refuses over 1 %)
    path = tmp_path / "glare.png"
    cv2.imwrite(str(path), image)
    run = specglue("detect-specular", path, "--out", tmp_path / "mask.png")
    assert run.returncode == 0, run.stderr
    mask = cv2.imread(str(tmp_path / "mask.png"), cv2.IMREAD_GRAYSCALE) > 0
    assert mask[51:55, 71:77].all() and not mask[:40].any()
    assert "specular pixels" in run.stdout


def _one_line_error(run, pattern):
    assert run.returncode != 0
    lines = [line for line in run.stderr.strip().splitlines() if line]
    assert lines and pattern in lines[-1], run.stderr


def test_bad_inputs_fail_with_one_line(small_pair, tmp_path):
    img0, img1 = small_pair
    _one_line_error(specglue("match", tmp_path / "nope.png", img1), "no such file")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image at all")
    _one_line_error(specglue("match", img0, corrupt), "is not a readable image")
    unreadable = tmp_path / "dir.png"
    unreadable.mkdir()
    _one_line_error(specglue("match", img0, unreadable), "no such file")
    small_mask = tmp_path / "small_mask.png"
    cv2.imwrite(str(small_mask), np.zeros((10, 10), np.uint8))
    _one_line_error(specglue("match", img0, img1, "--mask0", small_mask), "mask0 has size (10, 10)")
    _one_line_error(specglue("match", img0, img1, "--mask1", tmp_path / "none.png"), "none.png")
    _one_line_error(specglue("match", img0, img1, "--features", "orb"), "invalid choice: 'orb'")
    _one_line_error(specglue("match", img0, img1, "--rotations", "0,45"),
                    "--rotations: expected distinct multiples of 90")
    _one_line_error(specglue("match", img0, img1, "--features", "disk", "--weights", "aliked_rot"),
                    "'aliked_rot' are a matcher for 'aliked' features")
    _one_line_error(specglue("detect-specular", corrupt, "--out", tmp_path / "m.png"), "not a readable image")


@pytest.mark.slow
def test_eval_homography_prints_and_writes(tmp_path, data_dir):
    images = tmp_path / "images"
    images.mkdir()
    image = cv2.imread(str(data_dir / "01_lightglue_assets" / "sacre_coeur1.jpg"))
    cv2.imwrite(str(images / "a.jpg"), cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA))
    out_dir = tmp_path / "run"
    run = specglue("--num-threads", "1", "eval", "homography", "--images", images, "-k", "1",
                   "--max-keypoints", "256", "--resize", "320", "--methods", "specglue-off", "mnn",
                   "--out-dir", out_dir)
    assert run.returncode == 0, run.stderr
    assert "| specglue-off |" in run.stdout and "| mnn |" in run.stdout
    results = json.loads((out_dir / "results.json").read_text())
    assert set(results["summary"]) >= {"specglue-off", "mnn"}
    rescored = specglue("eval", "rescore", out_dir)
    assert rescored.returncode == 0 and rescored.stdout.strip() == run.stdout.strip()


@pytest.mark.slow
def test_demo_writes_the_picture_and_masks_help(tmp_path):
    out = tmp_path / "demo.png"
    run = specglue("demo", "--out", out)
    assert run.returncode == 0, run.stderr
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[0] > 2 * 400  # two rows: without and with masks
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in run.stdout.splitlines() if line.startswith("| ") and not line.startswith("| masks")}
    assert set(rows) == {"none", "detected", "true masks"}
    on_glare = {k: int(v[1]) for k, v in rows.items()}
    precision = {k: float(v[2]) for k, v in rows.items()}
    assert on_glare["true masks"] < on_glare["none"] and on_glare["detected"] < on_glare["none"]
    assert precision["true masks"] >= precision["none"]


def test_match_refuses_tiny_image(tmp_path):
    """An 8x8 image: one line on stderr naming the image and the minimum size, exit status 1."""
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.full((8, 8, 3), 200, np.uint8))
    run = specglue("match", tiny, tiny)
    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "image0" in lines[0] and "8x8 px" in lines[0] and "32 px" in lines[0], run.stderr


@pytest.mark.slow
def test_eval_pose_and_rotation_take_their_own_options(tmp_path, data_dir):
    src = data_dir / "03_superglue_scannet_pairs_gt"
    pairs = tmp_path / "pairs.txt"
    pairs.write_text((src / "scannet_sample_pairs_with_gt.txt").read_text().splitlines()[0] + "\n")
    run = specglue("eval", "pose", pairs, "--images", src / "images", "--max-keypoints", "128",
                   "--resize", "320", "--methods", "mnn", "--out-dir", tmp_path / "pose")
    assert run.returncode == 0, run.stderr
    config = json.loads((tmp_path / "pose" / "results.json").read_text())["config"]
    assert config["pairs_file"] == str(pairs.resolve()) and config["ransac_threshold"] == 1.0
    run = specglue("eval", "rotation", "--images", data_dir / "06_oxford_graffiti_homography", "--max-images", "1",
                   "--per-bin", "1", "--max-keypoints", "128", "--resize", "320", "--methods", "mnn",
                   "specglue-off", "--ransac-threshold", "2", "--variant", "aliked-n16rot", "--bf16",
                   "--out-dir", tmp_path / "rot")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0].startswith("| method | 0–30° |")
    results = json.loads((tmp_path / "rot" / "results.json").read_text())
    config = results["config"]
    assert config["per_bin"] == 1 and config["ransac_threshold"] == 2.0 and len(config["images"]) == 1
    # the rotation-invariant ALIKED weights extracted, the matcher in bf16 autocast
    assert config["extractor_conf"] == {"model_name": "aliked-n16rot"} and config["lightglue_conf"] == {"mp": True}
    (specglue_off,) = [m for m in results["methods"] if m["name"] == "specglue-off"]
    assert specglue_off["conf"]["mp"] is True


def test_pairs_command(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        (frames / f"{i:04d}.png").write_bytes(b"x")  # names only: pairs never reads pixels
    run = specglue("pairs", frames, "--mode", "sequential", "--window", "2", "--out", tmp_path / "seq.txt")
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "seq.txt").read_text().splitlines()
    assert lines[:3] == ["0000.png 0001.png", "0000.png 0002.png", "0001.png 0002.png"] and len(lines) == 9
    (tmp_path / "given.txt").write_text("0000.png 0009.png\n")
    _one_line_error(specglue("pairs", frames, "--mode", "from", "--pairs", tmp_path / "given.txt",
                             "--out", tmp_path / "out.txt"), "'0009.png' is not among the images")
    assert not (tmp_path / "out.txt").exists()


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    from specglue import cli
    from specglue.errors import SpecglueError

    def failing(error):
        def command(args):
            raise error
        return command

    monkeypatch.setattr(cli, "cmd_rescore", failing(SpecglueError("mapping failed: 1 of 9 images")))
    assert cli.main(["eval", "rescore", "anywhere"]) == 1
    assert capsys.readouterr().err.strip() == "specglue eval: error: mapping failed: 1 of 9 images"
    monkeypatch.setattr(cli, "cmd_rescore", failing(TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        cli.main(["eval", "rescore", "anywhere"])
