"""Local-feature extractors with one output contract (see :mod:`specglue.features.base`).

Pick one by name::

    extractor = build_extractor("aliked", max_num_keypoints=2048)
    feats = extractor.extract(image)  # image: [3, H, W] float in [0, 1] or [H, W, 3] uint8
    feats["keypoints"]        # [B, N, 2] (x, y) px of the input image
    feats["descriptors"]      # [B, N, D]
    feats["keypoint_scores"]  # [B, N]
    feats["image_size"]       # [B, 2] (W, H)
    feats["keypoint_mask"]    # [B, N] bool, False on padding
"""

from __future__ import annotations

from typing import Any, Dict, Type

from .aliked import ALIKED
from .base import Extractor, max_pool_nms
from .disk import DISK
from .sift import SIFT
from .superpoint import SuperPoint, SuperPointNet
from .xfeat import XFeat

#: name -> extractor class
EXTRACTORS: Dict[str, Type[Extractor]] = {
    "aliked": ALIKED,
    "disk": DISK,
    "sift": SIFT,
    "superpoint": SuperPoint,
    "xfeat": XFeat,
}


def build_extractor(name: str, **conf: Any) -> Extractor:
    """The extractor registered as ``name`` (see :data:`EXTRACTORS`), built with ``conf``.

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones) or config key.
    """
    if name not in EXTRACTORS:
        raise ValueError(f"Unknown extractor {name!r}; known: {sorted(EXTRACTORS)}")
    return EXTRACTORS[name](**conf)


__all__ = [
    "ALIKED",
    "DISK",
    "EXTRACTORS",
    "Extractor",
    "SIFT",
    "SuperPoint",
    "SuperPointNet",
    "XFeat",
    "build_extractor",
    "max_pool_nms",
]
