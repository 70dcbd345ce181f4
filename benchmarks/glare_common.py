"""Helpers shared by the specular benchmarks (``specular.py`` and ``real_glare.py``)."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import cv2
import numpy as np
import torch

from specglue import LightGlue
from specglue.specular import sample_mask

#: The issue's glare mask (``detect`` keyword arguments): grey > 225 grown by 5 px (square window).
ISSUE_GLARE = {"method": "bright", "threshold": 225.0, "dilate": 5}


def soft_mask(mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """``[H, W]`` float in [0, 1]: 1 on ``mask``, a Gaussian-blurred halo around it."""
    binary = mask.cpu().numpy().astype(np.float32)
    blurred = cv2.GaussianBlur(binary, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    return torch.from_numpy(np.clip(np.maximum(binary, blurred), 0.0, 1.0))


def distance_to_mask(mask: torch.Tensor) -> np.ndarray:
    """``[H, W]`` Euclidean distance (px) of each pixel to the nearest pixel of ``mask``."""
    m = mask.cpu().numpy().astype(bool)
    if not m.any():
        return np.full(m.shape, np.inf, dtype=np.float32)
    return cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 5)


def lookup(field: np.ndarray, kpts: np.ndarray) -> np.ndarray:
    """Values of ``field [H, W]`` at the nearest pixel of each keypoint ``[N, 2]``."""
    h, w = field.shape
    xy = np.rint(kpts).astype(np.int64)
    return field[np.clip(xy[:, 1], 0, h - 1), np.clip(xy[:, 0], 0, w - 1)]


def in_mask(keypoints: torch.Tensor, mask: torch.Tensor, margin: int) -> torch.Tensor:
    """``[N]`` bool: the nearest pixel of each ``[N, 2]`` keypoint lies in the ``[H, W]`` ``mask``
    dilated by ``margin`` px (the rule of ``Extractor.extract(image, specular_mask=mask)``)."""
    return sample_mask(mask[None], keypoints[None], margin)[0] > 0.5


def suppress(feats: Dict[str, torch.Tensor], mask: torch.Tensor, margin: int) -> Dict[str, torch.Tensor]:
    """Features of one image without the keypoints in ``mask`` (dilated by ``margin``), as
    ``Extractor.extract(image, specular_mask=mask)`` returns them."""
    keep = ~in_mask(feats["keypoints"][0], mask, margin)
    out = {k: v[:, keep] for k, v in feats.items() if k in ("keypoints", "descriptors", "keypoint_scores", "keypoint_mask")}
    out["image_size"] = feats["image_size"]
    return out


def run_matcher(matcher: LightGlue, f0: Dict[str, torch.Tensor], f1: Dict[str, torch.Tensor], mode: str,
                mask0: Optional[torch.Tensor] = None, mask1: Optional[torch.Tensor] = None) -> np.ndarray:
    """``[S, 2]`` matches; ``mask0`` / ``mask1`` are ``[H, W]`` (bool, or float for soft)."""
    data = {}
    for key, feats, mask in (("image0", f0, mask0), ("image1", f1, mask1)):
        view = {k: feats[k] for k in ("keypoints", "descriptors", "image_size")}
        if mask is not None and mode != "off":
            view["specular_mask"] = mask[None]
        data[key] = view
    if f0["keypoints"].shape[1] == 0 or f1["keypoints"].shape[1] == 0:
        return np.zeros((0, 2), dtype=np.int64)
    with torch.inference_mode():
        out = matcher(data, specular_mode=mode)
    return out["matches"][0].cpu().numpy()


def jsonable(value: Any) -> Any:
    """Plain JSON: tuples to lists, numpy scalars to Python, non-finite floats (failed
    homographies) to null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
