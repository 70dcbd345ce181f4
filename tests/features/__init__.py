"""Tests of specglue.features; small helpers shared by the test modules."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np
import torch

try:  # tests/ is a package (tests/__init__.py): conftest is tests.conftest
    from tests.conftest import load_reference_module
except ImportError:  # tests/ on sys.path (pytest's rootdir conftest)
    from conftest import load_reference_module  # type: ignore[no-redef]

__all__ = ["load_reference_module"]

#: two real photos of the LightGlue demo pairs, used for the parity tests
PARITY_PHOTOS = ("01_lightglue_assets/DSC_0410.JPG", "01_lightglue_assets/sacre_coeur1.jpg")
#: a laparoscopic frame with many specular glints (320 x 240)
GLINT_FRAME = "10_laparoscopic_cholecystectomy_sequence_rvim/frames/frame_00.png"


def read_rgb(path: Path, long_side: Optional[int] = None) -> np.ndarray:
    """A photo as ``[H, W, 3]`` uint8 RGB, optionally shrunk (area) to ``long_side`` px."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    image = np.ascontiguousarray(image[..., ::-1])
    if long_side is not None:
        h, w = image.shape[:2]
        s = long_side / max(h, w)
        image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return image


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` uint8 -> ``[3, H, W]`` float in [0, 1] (as LightGlue's loader)."""
    return torch.from_numpy(image.transpose(2, 0, 1).copy()).float() / 255.0


def nearest(a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Distance to, and index of, the nearest ``[M, 2]`` ``b`` of each ``[N, 2]`` ``a``."""
    if len(a) == 0 or len(b) == 0:
        return torch.full((len(a),), float("inf")), torch.zeros(len(a), dtype=torch.long)
    dist = torch.cdist(a.double(), b.double())
    d, i = dist.min(1)
    return d, i


def glint_mask(image: np.ndarray, level: int = 230) -> np.ndarray:
    """``[H, W]`` bool: the near-saturated (specular) pixels of an RGB uint8 image."""
    return image.min(axis=2) >= level
