"""SIFT keypoints through OpenCV, post-processed as LightGlue's ``SIFT(backend="opencv")``.

What the official ``sift_lightglue`` matcher weights expect, and what this module returns:

- the grey image is ``rgb_to_grayscale`` of the (resized) float image, turned into uint8 by
  ``x * 255`` truncated (as official);
- ``keypoints`` are OpenCV's ``KeyPoint.pt`` unchanged (OpenCV puts the centre of the top-left
  pixel at (0, 0), the convention of :mod:`specglue.features.base`);
- ``keypoint_scores`` are OpenCV's responses, ``scales`` its ``KeyPoint.size`` (a diameter in
  px, not halved) and ``oris`` its ``KeyPoint.angle`` in radians, in ``[0, 2*pi)`` (not wrapped);
- keypoints at the same pixel are reduced to the highest score, then the smallest ``|ori|``;
  with ``nms_radius > 0`` only the maxima of score in a ``2r+1`` window are kept; then the
  ``max_num_keypoints`` highest scores;
- ``descriptors`` are RootSIFT: L1-normalised, clipped at 1e-6, square-rooted, L2-normalised
  (so they are non-negative with unit L2 norm), ``[B, N, 128]``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..ops.filters import max_filter
from .base import PREPROCESSING_CONF, Extractor

logger = logging.getLogger(__name__)


def to_rootsift(descriptors: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """RootSIFT of ``[..., 128]`` SIFT descriptors: L1 normalise, clip at ``eps``, sqrt, L2."""
    x = F.normalize(descriptors, p=1, dim=-1, eps=eps)
    x = x.clamp(min=eps).sqrt()
    return F.normalize(x, p=2, dim=-1, eps=eps)


def filter_duplicates_and_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    oris: np.ndarray,
    image_shape: Tuple[int, int],
    nms_radius: int,
) -> np.ndarray:
    """Indices of the SIFT keypoints to keep, as LightGlue's ``filter_dog_point``.

    Keypoints sharing the pixel ``round((x, y) - 0.5)`` keep only those with the highest score,
    then those with the smallest ``|ori|`` (OpenCV emits one keypoint per dominant orientation).
    With ``nms_radius > 0``, a keypoint survives only if its score is the maximum of the
    ``2r+1`` window around its pixel.

    Args:
        keypoints: ``[N, 2]`` (x, y); scores: ``[N]``; oris: ``[N]`` radians;
        image_shape: ``(H, W)``; nms_radius: ``r`` in px (0: duplicates only).

    Returns:
        ``[M]`` sorted int indices into the inputs.
    """
    h, w = image_shape
    if len(keypoints) == 0:
        return np.zeros(0, dtype=np.int64)
    col, row = np.round(keypoints - 0.5).astype(np.int64).T
    row = row.clip(0, h - 1)
    col = col.clip(0, w - 1)
    pixel = row * w + col
    score = scores.astype(np.float64)
    best = np.full(h * w, -np.inf)
    np.maximum.at(best, pixel, score)
    keep = np.flatnonzero(best[pixel] == score)
    smallest = np.full(h * w, np.inf)
    abs_ori = np.abs(oris[keep]).astype(np.float64)
    np.minimum.at(smallest, pixel[keep], abs_ori)
    keep = keep[smallest[pixel[keep]] == abs_ori]
    if nms_radius > 0:
        grid = np.zeros(h * w)
        grid[pixel[keep]] = score[keep]
        grid_t = torch.from_numpy(grid.reshape(1, 1, h, w))
        pooled = max_filter(grid_t, nms_radius)
        is_max = (grid_t == pooled).reshape(-1).numpy()
        keep = keep[is_max[pixel[keep]]]
    return keep


class SIFT(Extractor):
    """SIFT (OpenCV) with RootSIFT descriptors and official LightGlue post-processing.

    Output: see :mod:`specglue.features.base`, plus ``scales`` ``[B, N]`` (OpenCV size, px)
    and ``oris`` ``[B, N]`` (radians in ``[0, 2*pi)``).
    """

    default_conf: ClassVar[Dict[str, Any]] = {
        "max_num_keypoints": 4096,  # keep the strongest; None (or <= 0) = no limit
        "detection_threshold": 0.0066667,  # OpenCV contrastThreshold (COLMAP's peak threshold)
        "edge_threshold": 10,  # OpenCV edgeThreshold
        "num_octave_layers": 4,  # OpenCV nOctaveLayers (official LightGlue's "num_octaves")
        "nms_radius": 0,  # px; 0 = drop same-pixel duplicates only; None = no filtering
        "rootsift": True,  # RootSIFT descriptors (what sift_lightglue expects); False = raw
        **PREPROCESSING_CONF,
    }
    input_channels: ClassVar[int] = 1
    extra_keys: ClassVar[Tuple[str, ...]] = ("scales", "oris")

    def __init__(self, **conf: Any) -> None:
        super().__init__(**conf)
        radius = self.conf["nms_radius"]
        if radius is not None and (not isinstance(radius, int) or radius < 0):
            raise ValueError(f"nms_radius must be None or an int >= 0, got {radius!r}")
        budget = self.conf["max_num_keypoints"]
        self._budget: Optional[int] = int(budget) if budget is not None and budget > 0 else None
        self._sift = cv2.SIFT_create(
            nfeatures=self._budget or 0,
            nOctaveLayers=int(self.conf["num_octave_layers"]),
            contrastThreshold=float(self.conf["detection_threshold"]),
            edgeThreshold=float(self.conf["edge_threshold"]),
        )

    @property
    def descriptor_dim(self) -> int:
        return 128

    def _extract_one(self, grey: np.ndarray, region: Optional[np.ndarray] = None) -> Dict[str, torch.Tensor]:
        """Features of one ``[H, W]`` uint8 image (detected where the ``[H, W]`` bool
        ``region`` is set, if given), keypoints ``[N, 2]``, the rest ``[N]``."""
        mask = None if region is None else region.astype(np.uint8) * 255
        detections, descriptors = self._sift.detectAndCompute(grey, mask)
        n = len(detections)
        kpts = np.array([k.pt for k in detections], dtype=np.float32).reshape(n, 2)
        scores = np.array([k.response for k in detections], dtype=np.float32)
        scales = np.array([k.size for k in detections], dtype=np.float32)
        oris = np.deg2rad(np.array([k.angle for k in detections], dtype=np.float32))
        desc = (
            descriptors.astype(np.float32)
            if descriptors is not None
            else np.zeros((0, 128), np.float32)
        )
        feats = {
            "keypoints": kpts,
            "keypoint_scores": scores,
            "scales": scales,
            "oris": oris,
            "descriptors": desc,
        }
        if self.conf["nms_radius"] is not None:
            keep = filter_duplicates_and_nms(
                kpts, scores, oris, grey.shape, int(self.conf["nms_radius"])
            )
            feats = {k: v[keep] for k, v in feats.items()}
        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feats.items()}
        if self._budget is not None and len(out["keypoints"]) > self._budget:
            top = torch.topk(out["keypoint_scores"], self._budget).indices
            out = {k: v[top] for k, v in out.items()}
        return out

    def _extract_batch(
        self, image: torch.Tensor, region: Optional[torch.Tensor] = None
    ) -> List[Dict[str, torch.Tensor]]:
        """See :meth:`Extractor._extract_batch`; ``image`` is ``[B, 1, H, W]`` grey."""
        device = image.device
        grey = (image[:, 0].detach().cpu().numpy() * 255.0).clip(0, 255).astype(np.uint8)
        out = []
        regions = [None] * len(grey) if region is None else list(region.cpu().numpy())
        for single, single_region in zip(grey, regions):
            feats = self._extract_one(single, single_region)
            if self.conf["rootsift"] and len(feats["descriptors"]):
                feats["descriptors"] = to_rootsift(feats["descriptors"])
            out.append({k: v.to(device) for k, v in feats.items()})
        return out
