"""From two images to verified matches in one call: :func:`match_pair`."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import specular
from .features import EXTRACTORS, build_extractor
from .features.roi import RoiInput, resolve_roi
from .geometry import GeometryResult, estimate_fundamental, estimate_homography, rot90_transform, warp_points
from .images import ImageInput, load_image
from .confs import MASK_MARGIN, PIPELINE_SPECULAR_MODE, SPECULAR_MODES, SPECULAR_THRESHOLD
from .model.lightglue import LightGlue
from .presets import DEFAULT_PRESET, FROM_PRESET, Preset, resolve_preset
from .weights import extractor_settings

logger = logging.getLogger(__name__)

MaskInput = Union[str, Path, np.ndarray, torch.Tensor]
GEOMETRIES = ("homography", "fundamental")
@dataclass
class MatchResult:
    """Matches between two images, in pixels of the images as given.

    keypoints0 [N0, 2], keypoints1 [N1, 2]; matches [S, 2] index pairs; scores [S];
    mask0 / mask1 [H, W] bool specular masks used (None when none); roi0 / roi1 [H, W] bool
    regions of interest the keypoints were detected in (None: everywhere); specularity0 [N0] /
    specularity1 [N1] per-keypoint specularity; geometry: the robust model and inlier mask
    over the S matches when requested; stop: layers the matcher ran.
    """

    keypoints0: np.ndarray
    keypoints1: np.ndarray
    matches: np.ndarray
    scores: np.ndarray
    stop: int
    image_size0: Tuple[int, int]
    image_size1: Tuple[int, int]
    mask0: Optional[np.ndarray] = None
    mask1: Optional[np.ndarray] = None
    roi0: Optional[np.ndarray] = None
    roi1: Optional[np.ndarray] = None
    specularity0: Optional[np.ndarray] = None
    specularity1: Optional[np.ndarray] = None
    geometry: Optional[GeometryResult] = None
    config: Dict[str, Any] = field(default_factory=dict)

    @property
    def points0(self) -> np.ndarray:
        """[S, 2] matched keypoints in image 0."""
        return self.keypoints0[self.matches[:, 0]]

    @property
    def points1(self) -> np.ndarray:
        """[S, 2] matched keypoints in image 1."""
        return self.keypoints1[self.matches[:, 1]]

    def summary(self) -> Dict[str, Any]:
        """Counts for captions, logs and the CLI."""
        info: Dict[str, Any] = {
            "keypoints0": int(len(self.keypoints0)),
            "keypoints1": int(len(self.keypoints1)),
            "matches": int(len(self.matches)),
            "stop_layer": int(self.stop),
        }
        if self.specularity0 is not None and self.specularity1 is not None:
            info["specular_keypoints0"] = int((self.specularity0 >= SPECULAR_THRESHOLD).sum())
            info["specular_keypoints1"] = int((self.specularity1 >= SPECULAR_THRESHOLD).sum())
        if self.geometry is not None:
            info["geometry"] = self.geometry.kind
            info["inliers"] = int(self.geometry.num_inliers)
        return info

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """Everything as named numpy arrays (for ``np.savez``)."""
        arrays = {
            "keypoints0": self.keypoints0, "keypoints1": self.keypoints1,
            "matches": self.matches, "scores": self.scores, "stop": np.array(self.stop),
            "image_size0": np.array(self.image_size0), "image_size1": np.array(self.image_size1),
        }
        for name in ("mask0", "mask1", "roi0", "roi1", "specularity0", "specularity1"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        if self.geometry is not None:
            arrays["inliers"] = self.geometry.inliers
            if self.geometry.model is not None:
                arrays["model"] = self.geometry.model
        return arrays

    def to_json(self) -> Dict[str, Any]:
        """A JSON-friendly dict (masks are left out; their pixel counts are kept)."""
        out: Dict[str, Any] = {"summary": self.summary(), "config": self.config}
        for name in ("keypoints0", "keypoints1", "matches", "scores", "specularity0", "specularity1"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.tolist()
        for name in ("mask0", "mask1", "roi0", "roi1"):
            value = getattr(self, name)
            if value is not None:
                out[name + "_pixels"] = int(value.sum())
        if self.geometry is not None:
            out["inliers"] = self.geometry.inliers.tolist()
            out["model"] = None if self.geometry.model is None else self.geometry.model.tolist()
        return out


def load_mask(mask: MaskInput, shape: Tuple[int, int], name: str = "mask") -> np.ndarray:
    """A specular mask as bool [H, W], checked against the image ``shape`` (H, W)."""
    if isinstance(mask, (str, Path)):
        array = specular.read_mask(mask)
    elif isinstance(mask, torch.Tensor):
        array = mask.detach().cpu().numpy()
    elif isinstance(mask, np.ndarray):
        array = mask
    else:
        raise TypeError(f"{name} must be a PNG path, a numpy array or a tensor, got {type(mask).__name__}")
    array = np.squeeze(array)
    if array.shape != tuple(shape):
        raise ValueError(f"{name} has size {array.shape} (H, W) but its image is {tuple(shape)}")
    return array > 0.5 if np.issubdtype(array.dtype, np.floating) else array.astype(bool)


@functools.lru_cache(maxsize=4)
def build_extractor_for(features: str, conf: Tuple[Tuple[str, Any], ...], device: str, compiled: bool = False):
    """The extractor ``features`` with the settings ``conf`` on ``device`` (kept: one per
    setting); ``compiled``: its dense network compiled where specglue measured that it pays
    (ALIKED on the CPU, :meth:`specglue.features.aliked.ALIKED.compile`)."""
    extractor = build_extractor(features, **dict(conf)).eval().to(device)
    if compiled and torch.device(device).type == "cpu" and features == "aliked":
        extractor.compile()
    return extractor


@functools.lru_cache(maxsize=4)
def build_matcher_for(features: str, weights: Optional[Union[str, Path]], mask_margin: int, device: str,
                      conf: Tuple[Tuple[str, Any], ...] = ()) -> LightGlue:
    """The matcher of ``features`` with ``weights`` and the options ``conf`` on ``device`` (kept)."""
    return LightGlue(features=features, weights=weights, mask_margin=mask_margin, **dict(conf)).eval().to(device)


def matcher_arrays(out: Mapping[str, Any]) -> Dict[str, Any]:
    """The :class:`MatchResult` fields of the first pair of a matcher output: matches, scores,
    stop and the per-keypoint specularity (None without masks)."""
    specularity = {f"specularity{i}": out[f"specularity{i}"][0].cpu().numpy() if f"specularity{i}" in out else None
                   for i in (0, 1)}
    return {"matches": out["matches"][0].cpu().numpy(), "scores": out["scores"][0].float().cpu().numpy(),
            "stop": int(out["stop"]), **specularity}


def extract_view(extractor: Any, name: str, rgb: np.ndarray, mask: Optional[np.ndarray],
                 region: Optional[np.ndarray], device: str) -> Dict[str, torch.Tensor]:
    """One image's matcher input: its features (detected inside ``region [H, W]`` if given) on
    ``device``, with its specular ``mask [H, W]`` if given; errors name the image ``name``."""
    with torch.inference_mode():
        try:
            feats = extractor.extract(rgb, roi=region)
        except ValueError as err:  # e.g. an image too small to extract from
            raise ValueError(f"{name}: {err}") from err
    view = {k: v.to(device) for k, v in feats.items() if k != "keypoint_mask"}
    if mask is not None:
        view["specular_mask"] = torch.from_numpy(mask)[None].to(device)
    return view


def check_turns(rotations: Any) -> Tuple[int, ...]:
    """``rotations`` as a tuple of degrees; ``ValueError`` unless they are distinct integer
    multiples of 90 in [0, 360)."""
    turns = tuple(rotations) if isinstance(rotations, (tuple, list)) else None
    if (not turns or len(set(turns)) < len(turns)
            or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t % 90 or not 0 <= t < 360
                   for t in turns)):
        raise ValueError(f"rotations must be distinct multiples of 90 degrees in [0, 360), e.g. (0, 180); "
                         f"got {rotations!r}")
    return tuple(int(t) for t in turns)


def _turned(array: Optional[np.ndarray], quarter_turns: int) -> Optional[np.ndarray]:
    return None if array is None else np.ascontiguousarray(np.rot90(array, quarter_turns))


def match_pair(
    image0: ImageInput,
    image1: ImageInput,
    features: str = "aliked",
    specular: Union[str, None, Tuple[Optional[MaskInput], Optional[MaskInput]]] = "auto",
    specular_mode: str = PIPELINE_SPECULAR_MODE,
    roi: RoiInput = "auto",
    mask_margin: int = MASK_MARGIN,
    geometry: Optional[str] = None,
    preset: Union[str, Preset] = DEFAULT_PRESET,
    max_num_keypoints: Optional[int] = None,
    resize: Union[int, None, str] = FROM_PRESET,
    upsample: bool = False,
    extractor_conf: Optional[Mapping[str, Any]] = None,
    ransac_threshold: float = 3.0,
    detector: str = specular.DEFAULT_METHOD,
    device: Optional[Union[str, torch.device]] = None,
    weights: Optional[Union[str, Path]] = None,
    rotations: Sequence[int] = (0,),
) -> MatchResult:
    """Extract features in two images, match them and optionally verify them geometrically.

    Args:
        image0, image1: paths, RGB uint8 arrays [H, W, 3] or float tensors [C, H, W] in [0, 1].
        features: ``"aliked"``, ``"disk"``, ``"sift"`` or ``"superpoint"`` (the matcher loads the
            official weights of that feature type unless ``weights`` says otherwise).
        specular: ``"auto"`` detects highlight masks with :func:`specglue.specular.detect`;
            ``None`` uses no masks; a pair ``(mask0, mask1)`` gives them (PNG paths, arrays or
            tensors [H, W]; either may be None).
        specular_mode: how the matcher uses the masks: hard | cross | soft | filter | off.
        roi: the region of interest keypoints are detected in (an endoscope's field of view):
            ``"auto"`` estimates it from both images (:func:`specglue.features.roi.estimate_roi`;
            no region for ordinary photos), ``None`` detects everywhere, a mask (PNG path,
            array or tensor [H, W], non-zero inside) gives it for both images.
        mask_margin: keypoints within this many px of a specular pixel count as specular
            (detectors and blob edges rarely agree to the pixel).
        geometry: None, ``"homography"`` or ``"fundamental"`` (OpenCV USAC MAGSAC++).
        preset: ``"accurate"``, ``"fast"`` or ``"realtime"`` (:mod:`specglue.presets`), or a
            :class:`~specglue.presets.Preset`: the keypoint budget and size unless given here,
            the matcher's precision and exit thresholds, chosen for ``device``. ``realtime``
            compiles ALIKED's network on the CPU (~30 s for the first image of each size):
            it pays over a video (:class:`specglue.FrameMatcher`), not for one pair.
        max_num_keypoints: the keypoint budget per image (None: the preset's, 2048 for
            ``accurate``).
        resize: images whose long side exceeds this many px are shrunk to it before
            extraction (None: never; not given: the preset's, 1024 px for ``accurate``); smaller images are used as they are, unless
            ``upsample`` (the official LightGlue behaviour) enlarges them to it too. Keypoints
            are reported in the pixels of the images as given. Images under 32 px on a side
            raise ``ValueError``.
        extractor_conf: further extractor settings (see the extractor's ``default_conf``),
            e.g. ``{"keypoint_floor": 0}`` for the official threshold-only detection, or
            ``{"detection_threshold": 0.1}``.
        ransac_threshold: inlier threshold in pixels for the geometry.
        detector: specular detector method for ``specular="auto"``.
        weights: the matcher's weights: a registry name (:data:`specglue.weights.CHECKPOINTS`)
            or a checkpoint file; None: the official weights of ``features``. ``"aliked_rot"``,
            specglue's rotation-aware matcher, also sets the extractor to ALIKED-n16rot.
        rotations: turns of image 1 to match, degrees in multiples of 90: image 1 is also
            turned by each, extracted and matched, and the turn with the most matches wins
            (ties: the first given), reported as ``config["rotation1"]``; keypoints1 stay in
            image 1's pixels. ``(0, 180)`` with ``weights="aliked_rot"`` matches at any in-plane
            angle (2 matching calls, docs/models.md).
    """
    if features not in EXTRACTORS:
        raise ValueError(f"Unknown features {features!r}; expected one of {sorted(EXTRACTORS)}")
    if specular_mode not in SPECULAR_MODES:
        raise ValueError(f"specular_mode must be one of {SPECULAR_MODES}, got {specular_mode!r}")
    if geometry is not None and geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be None or one of {GEOMETRIES}, got {geometry!r}")
    turns = check_turns(rotations)
    chosen = resolve_preset(preset, max_num_keypoints, resize)
    conf = {**chosen.extractor_conf(), "upsample": upsample, **extractor_settings(weights, extractor_conf, features)}
    device = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rgb0, rgb1 = load_image(image0, "image0"), load_image(image1, "image1")
    masks = _resolve_masks(specular, rgb0, rgb1, detector)
    regions = _resolve_regions(roi, rgb0, rgb1)

    extractor = build_extractor_for(features, tuple(sorted(conf.items())), device, chosen.compile_extractor)
    matcher = build_matcher_for(features, weights, int(mask_margin), device,
                                tuple(sorted(chosen.lightglue_conf(device).items())))

    view0 = extract_view(extractor, "image0", rgb0, masks[0], regions[0], device)
    best = None  # (turn, image 1's view, matcher output) with the most matches
    for turn in turns:
        k = turn // 90
        view1 = extract_view(extractor, "image1", _turned(rgb1, k), _turned(masks[1], k), _turned(regions[1], k),
                             device)
        with torch.inference_mode():
            out = matcher({"image0": view0, "image1": view1}, specular_mode=specular_mode)
        if best is None or len(out["matches"][0]) > len(best[2]["matches"][0]):
            best = (turn, view1, out)
    turn, view1, out = best
    keypoints1 = view1["keypoints"][0].cpu().numpy()
    if turn:  # back from the turned view to image 1's pixels
        w, h = rgb1.shape[1], rgb1.shape[0]
        to_view, _ = rot90_transform(w, h, turn // 90)
        keypoints1 = warp_points(keypoints1, np.linalg.inv(to_view)).astype(np.float32)

    result = MatchResult(
        keypoints0=view0["keypoints"][0].cpu().numpy(),
        keypoints1=keypoints1,
        **matcher_arrays(out),
        image_size0=(rgb0.shape[1], rgb0.shape[0]),
        image_size1=(rgb1.shape[1], rgb1.shape[0]),
        mask0=masks[0], mask1=masks[1], roi0=regions[0], roi1=regions[1],
        config={"features": features, "weights": None if weights is None else str(weights),
                "preset": chosen.describe(device),
                "specular_mode": specular_mode, "geometry": geometry,
                "mask_margin": mask_margin, "rotations": list(turns), "rotation1": turn,
                "extractor": dict(extractor.conf),
                "specular": specular if isinstance(specular, str) or specular is None else "given",
                "roi": roi if isinstance(roi, str) or roi is None else "given",
                "detector": detector, "ransac_threshold": ransac_threshold},
    )
    if geometry == "homography":
        result.geometry = estimate_homography(result.points0, result.points1, threshold_px=ransac_threshold)
    elif geometry == "fundamental":
        result.geometry = estimate_fundamental(result.points0, result.points1, threshold_px=ransac_threshold)
    logger.info("match_pair: %s", result.summary())
    return result


def _resolve_regions(roi: RoiInput, rgb0: np.ndarray, rgb1: np.ndarray
                     ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """The regions of interest of both images: one estimate from both when they have the same
    size (one endoscope), else one each; a given mask must fit both."""
    if isinstance(roi, str) and roi == "auto" and rgb0.shape != rgb1.shape:
        return resolve_roi(roi, [rgb0], rgb0.shape[:2]), resolve_roi(roi, [rgb1], rgb1.shape[:2])
    region = resolve_roi(roi, [rgb0, rgb1], rgb0.shape[:2], name="roi")
    if region is not None and rgb1.shape[:2] != rgb0.shape[:2]:
        raise ValueError(f"roi is one mask for both images, but image0 is {rgb0.shape[1]}x{rgb0.shape[0]} px "
                         f"and image1 {rgb1.shape[1]}x{rgb1.shape[0]}")
    return region, region


def _resolve_masks(
    spec: Union[str, None, Sequence[Optional[MaskInput]]], rgb0: np.ndarray, rgb1: np.ndarray, detector: str
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    if spec is None:
        return None, None
    if isinstance(spec, str):
        if spec != "auto":
            raise ValueError(f"specular must be 'auto', None or a pair of masks, got {spec!r}")
        return specular.detect(rgb0, method=detector), specular.detect(rgb1, method=detector)
    if not isinstance(spec, (tuple, list)) or len(spec) != 2:
        raise ValueError("specular must be 'auto', None or a pair (mask0, mask1)")
    return tuple(  # type: ignore[return-value]
        None if m is None else load_mask(m, rgb.shape[:2], f"mask{i}")
        for i, (m, rgb) in enumerate(zip(spec, (rgb0, rgb1)))
    )
