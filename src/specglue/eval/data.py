"""Inputs shared by the benchmarks: the shared photo folder and synthetic highlights."""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch

PathLike = Union[str, Path]

#: highlight placements a benchmark can synthesise on its pairs (``--specular``)
SPECULAR_PLACEMENTS = ("independent", "camera_fixed")

#: the shared photos used when no image folder is given (globs relative to the data folder):
#: the two LightGlue demo pairs, the 10 hloc Sacre-Coeur photos, the 13 SuperGlue
#: phototourism photos, the 6 TUM frames and the first Oxford graffiti image (34 in all)
DEFAULT_IMAGE_GLOBS = (
    "01_lightglue_assets/*.[jJ][pP][gG]",
    "02_hloc_sacre_coeur/mapping/*.jpg",
    "04_superglue_phototourism_pairs/images/*.jpg",
    "05_tum_freiburg3_sequence/images/*.png",
    "06_oxford_graffiti_homography/img1.png",
)


def find_data_dir() -> Optional[Path]:
    """The shared photo folder: ``$SPECGLUE_DATA``, ``./../shared/data``, or the one next to
    the repository this file lives in; None if none exists."""
    candidates = []
    if os.environ.get("SPECGLUE_DATA"):
        candidates.append(Path(os.environ["SPECGLUE_DATA"]))
    candidates.append(Path.cwd().parent / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[4] / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def default_images(data_dir: Optional[PathLike] = None) -> List[Path]:
    """The default benchmark photos (see :data:`DEFAULT_IMAGE_GLOBS`), sorted.

    Raises:
        ValueError: no data folder was found or it holds none of the photos.
    """
    root = Path(data_dir) if data_dir is not None else find_data_dir()
    if root is None or not root.is_dir():
        raise ValueError("no image folder given and the shared data folder was not found; "
                         "pass images_dir (--images DIR) or set SPECGLUE_DATA")
    images = sorted({p for pattern in DEFAULT_IMAGE_GLOBS for p in root.glob(pattern)})
    if not images:
        raise ValueError(f"none of the default photos {DEFAULT_IMAGE_GLOBS} found under {root}")
    return images


def safe_name(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9_.-]`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def image_key(path: Path, root: Optional[Path]) -> Tuple[str, int]:
    """A pair-name stem of an image and the CRC32 of its path relative to ``root`` (the seed
    of its pairs, so adding an image does not change the pairs of the others)."""
    rel = str(path.relative_to(root)) if root is not None and root in path.parents else path.name
    crc = zlib.crc32(rel.encode())
    return f"{safe_name(path.stem)}-{crc:08x}", crc


def add_specular(image0: torch.Tensor, image1: torch.Tensor, placement: Optional[str], seed: int
                 ) -> Tuple[torch.Tensor, Optional[np.ndarray], torch.Tensor, Optional[np.ndarray]]:
    """Synthetic highlights on both ``[3, H, W]`` images (``placement`` None: none); returns
    ``(image0, mask0 [H, W] bool or None, image1, mask1)``."""
    if placement is None:
        return image0, None, image1, None
    from ..specular import synthesize_pair

    if placement not in SPECULAR_PLACEMENTS:
        raise ValueError(f"specular must be None or one of {SPECULAR_PLACEMENTS}, got {placement!r}")
    out = synthesize_pair(image0, image1, placement=placement, seed=int(seed))
    return out[0], out[1].cpu().numpy(), out[2], out[3].cpu().numpy()


__all__ = ["DEFAULT_IMAGE_GLOBS", "SPECULAR_PLACEMENTS", "add_specular", "default_images",
           "find_data_dir", "image_key", "safe_name"]
