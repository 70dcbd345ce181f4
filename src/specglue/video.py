"""Matching a video as it streams: every frame extracted once and matched with the previous one
(the front end of endoscopic SLAM and visual odometry), with a speed preset.

    matcher = FrameMatcher(preset="realtime")
    for frame in frames:                  # paths, RGB arrays [H, W, 3] or tensors [3, H, W]
        result = matcher(frame)           # None for the first frame, else a MatchResult
        if result is not None:            # (previous frame, this frame)
            print(result.summary(), matcher.timings)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np
import torch

from . import specular
from .confs import MASK_MARGIN, PIPELINE_SPECULAR_MODE, SPECULAR_MODES
from .features import EXTRACTORS
from .features.roi import RoiInput, resolve_roi
from .images import ImageInput, load_image
from .pipeline import MatchResult, build_extractor_for, build_matcher_for, extract_view, matcher_arrays
from .presets import FROM_PRESET, Preset, resolve_preset
from .weights import extractor_settings

logger = logging.getLogger(__name__)


class FrameMatcher:
    """Matches each frame it is given with the one before.

    Args:
        preset: ``"realtime"`` (default), ``"fast"`` or ``"accurate"`` (:mod:`specglue.presets`);
            ``max_num_keypoints`` and ``resize`` override its keypoint budget and size.
        features, weights, extractor_conf, mask_margin, detector, device: as in
            :func:`specglue.match_pair`.
        specular: ``"auto"`` detects each frame's highlights (:func:`specglue.specular.detect`),
            None uses no masks.
        specular_mode: how the matcher uses the masks (default ``cross``).
        roi: ``"auto"`` estimates the field of view from the first frame (none for ordinary
            video), None detects everywhere, a mask [H, W] gives it for every frame.

    After each call, :attr:`timings` holds the frame's ``extract_ms`` (highlights, features)
    and ``match_ms``.
    """

    def __init__(self, preset: Union[str, Preset] = "realtime", features: str = "aliked",
                 specular: Optional[str] = "auto", specular_mode: str = PIPELINE_SPECULAR_MODE,
                 roi: RoiInput = "auto", mask_margin: int = MASK_MARGIN, detector: str = specular.DEFAULT_METHOD,
                 max_num_keypoints: Optional[int] = None, resize: Union[int, None, str] = FROM_PRESET,
                 extractor_conf: Optional[Mapping[str, Any]] = None, weights: Optional[Union[str, Path]] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        if features not in EXTRACTORS:
            raise ValueError(f"Unknown features {features!r}; expected one of {sorted(EXTRACTORS)}")
        if specular not in ("auto", None):
            raise ValueError(f"specular must be 'auto' or None for a video, got {specular!r}")
        if specular_mode not in SPECULAR_MODES:
            raise ValueError(f"specular_mode must be one of {SPECULAR_MODES}, got {specular_mode!r}")
        self.preset = resolve_preset(preset, max_num_keypoints, resize)
        self.device = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        conf = {**self.preset.extractor_conf(), **extractor_settings(weights, extractor_conf, features)}
        self.extractor = build_extractor_for(features, tuple(sorted(conf.items())), self.device,
                                             self.preset.compile_extractor)
        self.matcher = build_matcher_for(features, weights, int(mask_margin), self.device,
                                         tuple(sorted(self.preset.lightglue_conf(self.device).items())))
        self.specular, self.specular_mode, self.detector, self.roi = specular, specular_mode, detector, roi
        self.config = {"features": features, "preset": self.preset.describe(self.device),
                       "specular_mode": specular_mode, "extractor": dict(self.extractor.conf),
                       "specular": specular, "roi": roi if isinstance(roi, str) or roi is None else "given"}
        self.timings: Dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        """Start a new video: the next frame is matched with nothing, and ``roi="auto"`` is
        estimated again."""
        self._previous: Optional[Dict[str, Any]] = None
        self._region: Optional[np.ndarray] = None
        self._region_for: Optional[tuple] = None

    def _frame_region(self, rgb: np.ndarray) -> Optional[np.ndarray]:
        if self._region_for != rgb.shape[:2]:
            self._region = resolve_roi(self.roi, [rgb], rgb.shape[:2], name="roi")
            self._region_for = rgb.shape[:2]
        return self._region

    def __call__(self, frame: ImageInput) -> Optional[MatchResult]:
        """Extract ``frame`` and match the previous frame (image 0) with it (image 1); None for
        the first frame after construction or :meth:`reset`."""
        start = time.perf_counter()
        rgb = load_image(frame, "frame")
        mask = specular.detect(rgb, method=self.detector) if self.specular == "auto" else None
        region = self._frame_region(rgb)
        view = extract_view(self.extractor, "frame", rgb, mask, region, self.device)
        self.timings = {"extract_ms": (time.perf_counter() - start) * 1e3}
        current = {"view": view, "rgb_size": (rgb.shape[1], rgb.shape[0]), "mask": mask, "region": region}
        previous, self._previous = self._previous, current
        if previous is None:
            return None
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.matcher({"image0": previous["view"], "image1": view}, specular_mode=self.specular_mode)
        self.timings["match_ms"] = (time.perf_counter() - start) * 1e3
        return MatchResult(
            keypoints0=previous["view"]["keypoints"][0].cpu().numpy(),
            keypoints1=view["keypoints"][0].cpu().numpy(),
            **matcher_arrays(out),
            image_size0=previous["rgb_size"], image_size1=current["rgb_size"],
            mask0=previous["mask"], mask1=mask, roi0=previous["region"], roi1=region,
            config=self.config,
        )


__all__ = ["FrameMatcher"]
