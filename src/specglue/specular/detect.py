"""Classical specular-highlight detectors, batched and in pure torch.

Shape letters: ``B`` batch, ``C`` channels (3 = RGB, 1 = grey), ``H x W`` image size.
A mask is a bool tensor ``[B, H, W]`` that is True on highlight pixels.

Four rules are available (the last two are published ones, cited below):

- ``"highlight"`` (the default): cores near-saturated in every channel (relative to the image's
  own clip level per channel, so white balance and the camera's range do not matter), compact
  and much brighter than their own surround, whose size follows the core's, so the rule is the
  same at every resolution and a glint next to bright tissue is judged on its own. It tells
  highlights from bright diffuse surfaces (sunlit walls, sky, snow, white paint) that the
  grey-level rules also flag.
- ``"bright"``: grey level above a threshold (the EndoMapper NR-SLAM bright mask).
- ``"arnold"``: Arnold et al. 2010, absolute colour thresholds plus a relative test
  against a smoothed image in which the candidate highlights were filled in.
- ``"tchoulack"``: Tchoulack et al. 2008, high intensity and low saturation relative
  to the image maxima, grown by a 3x3 window.

Every threshold is given in 0..255 units, as in the papers, and divided by 255 inside.
All the work runs on the device of the input tensor, except the clustering, distance
transforms and per-cluster tests of ``"highlight"`` (OpenCV and numpy, on the CPU).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any, Mapping, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .sample import dilate_mask

logger = logging.getLogger(__name__)

ImageLike = Union[torch.Tensor, np.ndarray]

#: The method used when ``detect`` is called without ``method`` (and by ``match_pair``'s
#: ``specular="auto"``). Chosen with ``benchmarks/detector.py`` (``docs/detector.md``): on 159
#: hand-checked highlights in 25 real endoscopy frames, pixel recall 0.98 / precision 0.86 (the
#: 12 sinus frames: 0.99 / 0.95 at 1920 px and at 480 px; ``bright``: 0.88 / 0.07);
#: IoU 0.91 on synthetic highlights drawn on real photos (``bright``: 0.78); 0.6 % median /
#: 2.1 % mean of the keypoints of 28 everyday photos masked, snow, lamps, the sun and white
#: facades included (``bright``: 8.0 % / 14.2 %). It misses dim, unclipped sparkles (EAD2019).
DEFAULT_METHOD = "highlight"

#: Settings shared by every method.
COMMON_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "dilate": 0,  # grow the final mask by this many pixels (square window); 0 disables
    }
)

#: Per-method settings. Thresholds are in 0..255 units; sizes are in pixels.
METHOD_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "highlight": MappingProxyType(
            {
                "clip_margin": 16.0,  # near-saturated: R, G and B all within this of their image's clip level
                "threshold": 180.0,  # ... and grey at least this, so dim images have no highlight
                "contrast": 38.25,  # a core's brightest grey minus its surround's grey, at least
                "surround_quantile": 0.75,  # the surround's grey: this quantile of its ring's grey levels
                "dark": 25.0,  # ring pixels darker than this are background (an endoscope's black border)
                "ring": 0.5,  # surround: from 1 + ring * r to 2 + 2 * ring * r px off the core (r: its radius)
                "max_area": 0.01,  # largest highlight, share of the image area; larger ones are surfaces
                "min_thickness": 0.25,  # core's inscribed radius over the radius of a disc of its area, at least
            }
        ),
        "bright": MappingProxyType(
            {
                "threshold": 225.0,  # grey (0.299R + 0.587G + 0.114B) strictly above this is a highlight
                "erode": 0,  # erode the raw mask by this many pixels before `dilate`; 0 disables
            }
        ),
        "arnold": MappingProxyType(
            {
                "t1": 240.0,  # module 1 absolute threshold on E, G / r_GE and B / r_BE
                "t2_abs": 190.0,  # lower absolute threshold that marks candidates for module 2
                "t2_rel": 1.2,  # module 2: flag if max_c tau_c * I_c / I_filtered_c exceeds this
                "percentile": 95.0,  # percentile used for the colour-balance ratios r_GE, r_BE
                "fill_size": 21,  # window (px) whose non-candidate mean fills the candidates
                "median_size": 31,  # median filter support (px, approximate, see docstring)
                "relative_in_candidates": True,  # module 2 only flags t2_abs candidates; False: anywhere
            }
        ),
        "tchoulack": MappingProxyType(
            {
                "intensity_ratio": 0.5,  # intensity m = (R+G+B)/3 must be >= this * max(m)
                "saturation_ratio": 0.33,  # saturation must be <= this * max(saturation)
                "min_intensity": 128.0,  # m must also exceed this (0..255), so flat or dim images stay empty; 0 disables
                "grow": 1,  # grow by this many pixels (1 = the paper's 3x3 window); 0 disables
            }
        ),
    }
)

_LUMA = (0.2989, 0.5870, 0.1140)
_EPS = 1e-6


def detect(image: ImageLike, method: str = DEFAULT_METHOD, **params: Any) -> ImageLike:
    """Detect specular highlights.

    Args:
        image: ``[B, C, H, W]`` or ``[C, H, W]`` float tensor in [0, 1] with C = 3 (RGB)
            or C = 1 (grey), or a numpy ``uint8`` array ``[H, W, 3]`` (RGB) or ``[H, W]``.
        method: ``"highlight"`` (default), ``"bright"``, ``"arnold"`` or ``"tchoulack"``.
        **params: settings of ``method`` (unknown keys raise ``ValueError``):

            Common to all methods:
              - ``dilate`` (0): grow the final mask by this many pixels (square window).

            ``"highlight"`` (specglue's rule), all sizes relative to each highlight or the image:
              - cores: pixels whose R, G and B are all within ``clip_margin`` (16) of that
                channel's clip level (the brightest value a whole 3x3 patch of the image
                reaches in that channel) and whose grey is at least ``threshold`` (180).
                Cores closer than 2 px form one cluster; r is the radius of a disc of a
                cluster's core area.
              - surround: the pixels from 1 + ``ring`` * r to 2 + 2 * ``ring`` * r px off the
                core (``ring`` 0.5) that are nearer to it than to any other core and not
                darker than ``dark`` (25: an endoscope's black border is not the surface);
                its grey is the ``surround_quantile`` (0.75) quantile of theirs (0 if none).
              - outline: the core and the pixels within 1 + ``ring`` * r px of it whose grey
                is at least half-way between the core's peak and its surround (the
                half-maximum outline); these are masked if
              - the peak outshines the surround by ``contrast`` (38.25, 0.15 of the range),
              - the outline covers at most ``max_area`` (0.01) of the image (sky, snow
                fields and sunlit walls are larger), and
              - the core is compact: the largest disc inside it has a radius of at least
                ``min_thickness`` (0.25) * r (a lit rim or a strip of white facade is thin).

            ``"bright"`` (EndoMapper NR-SLAM bright mask):
              - ``threshold`` (225): grey = 0.299R + 0.587G + 0.114B above this (0..255).
              - ``erode`` (0): erode the raw mask by this many pixels before dilating,
                which removes specks; ``erode=r, dilate=r`` is a morphological opening.

            ``"arnold"`` (Arnold et al. 2010, simplified):
              - ``t1`` (240): module 1 flags a pixel if E > t1, G > r_GE * t1 or
                B > r_BE * t1, with E = 0.2989R + 0.587G + 0.114B and r_GE, r_BE the
                ratios of the ``percentile``-th percentiles of G and B to that of E.
              - ``t2_abs`` (190): the same rule with this threshold marks candidates.
              - ``t2_rel`` (1.2): module 2 flags a pixel if
                max_c tau_c * I_c / I_filtered_c > t2_rel, where
                tau_c = mean_c / (mean_c + std_c) over the image.
              - ``percentile`` (95): the percentile of the colour-balance ratios.
              - ``fill_size`` (21): the candidates (grown by 2 px) are filled with the
                mean colour of the non-candidate pixels in a ``fill_size`` square
                window, instead of the paper's ring centroid.
              - ``median_size`` (31): the filled image is median filtered over about
                this many pixels; to stay cheap the median runs on an image
                downsampled by ``median_size // 5`` and is upsampled bilinearly.
              - ``relative_in_candidates`` (True): module 2 only flags ``t2_abs``
                candidates; without this, bright texture on a dark background passes
                the relative test. The paper's contour-gradient (T3) and minimum-size
                (N_min) post-processing is left out.
              The defaults are the values of the public reimplementation; another
              script uses ``t1=250, t2_abs=200, t2_rel=1.5``, which flags far less on
              bright natural scenes (module 2 fires on large bright areas, where the
              fill has no non-candidate pixels nearby).

            ``"tchoulack"`` (Tchoulack et al. 2008):
              - ``intensity_ratio`` (0.5): m = (R+G+B)/3 must be >= ratio * max(m).
              - ``saturation_ratio`` (0.33): the paper's fast saturation
                s = 1.5 (R - m) if R + B >= 2G else 1.5 (m - B) (clipped at 0)
                must be <= ratio * max(s).
              - ``min_intensity`` (128): m must also exceed this level (mid-grey). Not in
                the paper: its purely relative rule flags every pixel of a flat image.
                Set 0 for the original rule.
              - ``grow`` (1): grow the mask by this many pixels (1 = the 3x3 window).

    Returns:
        Bool mask ``[B, H, W]``, ``[H, W]`` for an unbatched tensor, or a numpy bool
        ``[H, W]`` array for numpy input; on the device of the input tensor. Grey
        input is treated as R = G = B. Maxima and percentiles are per image.

    Raises:
        TypeError: ``image`` is neither a tensor nor an array, or has a wrong dtype.
        ValueError: wrong shape, values outside [0, 1], unknown ``method`` or setting.
    """
    conf = _merge_conf(method, params)
    rgb, unbatched, from_numpy = _to_rgb_batch(image)
    if rgb.numel() == 0:
        mask = torch.zeros(rgb.shape[0], *rgb.shape[-2:], dtype=torch.bool, device=rgb.device)
    else:
        mask = _RULES[method](rgb, conf)
        if conf["dilate"] > 0:
            mask = dilate_mask(mask, int(conf["dilate"]))
    if unbatched:
        mask = mask[0]
    if from_numpy:
        return mask.cpu().numpy()
    return mask


# --------------------------------------------------------------------------- rules


def _bright(rgb: torch.Tensor, conf: Mapping[str, Any]) -> torch.Tensor:
    grey = _luma(rgb)
    mask = grey > conf["threshold"] / 255.0
    if conf["erode"] > 0:
        mask = _erode(mask, int(conf["erode"]))
    return mask


def _arnold(rgb: torch.Tensor, conf: Mapping[str, Any]) -> torch.Tensor:
    e = _luma(rgb)  # [B, H, W]
    g, b = rgb[:, 1], rgb[:, 2]
    q = conf["percentile"] / 100.0
    p_e = _percentile(e, q).clamp_min(_EPS)
    r_ge = (_percentile(g, q) / p_e)[:, None, None]
    r_be = (_percentile(b, q) / p_e)[:, None, None]

    def absolute(threshold: float) -> torch.Tensor:
        t = threshold / 255.0
        return (e > t) | (g > r_ge * t) | (b > r_be * t)

    module1 = absolute(conf["t1"])
    candidates = absolute(conf["t2_abs"])

    # Fill the (slightly grown) candidates with the local mean of the other pixels.
    keep = (~dilate_mask(candidates, 2)).to(rgb.dtype)[:, None]  # [B, 1, H, W]
    size = int(conf["fill_size"]) | 1
    num = _box_filter(rgb * keep, size)
    den = _box_filter(keep, size)
    global_mean = (rgb * keep).sum((2, 3), keepdim=True) / keep.sum((2, 3), keepdim=True).clamp_min(1)
    local_mean = torch.where(den > _EPS, num / den.clamp_min(_EPS), global_mean)
    filled = torch.where(keep > 0, rgb, local_mean)
    smooth = _approx_median(filled, int(conf["median_size"]))

    mean = rgb.mean((2, 3), keepdim=True)
    std = rgb.std((2, 3), keepdim=True) if rgb.shape[-1] * rgb.shape[-2] > 1 else torch.zeros_like(mean)
    tau = mean / (mean + std).clamp_min(_EPS)
    ratio = (tau * rgb / smooth.clamp_min(_EPS)).amax(1)  # [B, H, W]
    module2 = ratio > conf["t2_rel"]
    if conf["relative_in_candidates"]:
        module2 &= candidates
    return module1 | module2


def _tchoulack(rgb: torch.Tensor, conf: Mapping[str, Any]) -> torch.Tensor:
    r, g, b = rgb.unbind(1)
    m = rgb.mean(1)
    s = torch.where(r + b >= 2 * g, 1.5 * (r - m), 1.5 * (m - b)).clamp_min(0)
    m_max = m.flatten(1).amax(1)[:, None, None]
    s_max = s.flatten(1).amax(1)[:, None, None]
    mask = (m >= conf["intensity_ratio"] * m_max) & (s <= conf["saturation_ratio"] * s_max)
    mask &= m > conf["min_intensity"] / 255.0
    if conf["grow"] > 0:
        mask = dilate_mask(mask, int(conf["grow"]))
    return mask


def _min3x3(x: torch.Tensor) -> torch.Tensor:
    """The minimum over each 3x3 window of ``[..., H, W]`` (the window cut at the borders): a row
    pass and a column pass of shifted minima, the values of ``-max_pool2d(-x, 3, 1, 1)`` at a
    third of its time on the CPU."""
    padded = F.pad(x, (1, 1, 1, 1), value=float("inf"))
    rows = torch.minimum(torch.minimum(padded[..., :, :-2], padded[..., :, 1:-1]), padded[..., :, 2:])
    return torch.minimum(torch.minimum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _highlight(rgb: torch.Tensor, conf: Mapping[str, Any]) -> torch.Tensor:
    grey = _luma(rgb)  # [B, H, W]
    # Each channel's clip level: the brightest value that a whole 3x3 patch reaches, so single
    # JPEG overshoots do not count; white balance and the camera's range move it, so it is per image.
    level = _min3x3(rgb).amax((2, 3), keepdim=True)  # [B, 3, 1, 1]
    core = (rgb >= level - conf["clip_margin"] / 255.0).all(1) & (grey >= conf["threshold"] / 255.0)
    grey_np = grey.cpu().numpy()
    core_np = core.cpu().numpy()
    masks = [_highlight_one(grey_np[b], core_np[b], conf) for b in range(rgb.shape[0])]
    return torch.from_numpy(np.stack(masks)).to(rgb.device)


def _highlight_one(grey: np.ndarray, core: np.ndarray, conf: Mapping[str, Any]) -> np.ndarray:
    """``_highlight`` for one image: grey ``[H, W]`` float in [0, 1], core ``[H, W]`` bool -> mask ``[H, W]``."""
    h, w = grey.shape
    if not core.any():
        return np.zeros((h, w), dtype=bool)
    # Cores closer than 2 px form one cluster, and a cluster's enclosed holes belong to it:
    # JPEG and a white-balance gain break a clipped plateau into a ring of specks.
    bridged = cv2.dilate(core.astype(np.uint8), np.ones((3, 3), np.uint8))
    holes = _holes(bridged)
    core = core | holes
    count, labels = cv2.connectedComponents(bridged | holes, connectivity=8)
    labels = np.where(core, labels, 0)
    # Every pixel's distance to the nearest core pixel, and that core's cluster.
    dist, nearest = cv2.distanceTransformWithLabels(
        (~core).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP
    )
    to_cluster = np.zeros(int(nearest.max()) + 1, dtype=np.int64)
    to_cluster[nearest[core]] = labels[core]
    cluster = to_cluster[nearest]  # [H, W], 1..count-1

    area = np.bincount(labels.ravel(), minlength=count).astype(np.float64)  # core pixels per cluster
    radius = np.sqrt(area / np.pi)  # of the disc with the core's area
    inner = 1.0 + conf["ring"] * radius  # [count]: the surround starts here ...
    outer = 2.0 + 2.0 * conf["ring"] * radius  # ... and ends here (px from the core)
    d_in, d_out = inner[cluster], outer[cluster]  # [H, W]
    ring = (dist > d_in) & (dist <= d_out) & (grey >= conf["dark"] / 255.0)
    peak = np.zeros(count)
    np.maximum.at(peak, labels[core], grey[core])
    surround = _per_label_quantile(grey[ring], cluster[ring], count, conf["surround_quantile"], default=np.zeros(count))
    # The outline: around a core, the pixels brighter than half-way between its peak and its
    # surround (the half-maximum outline), closer to it than its surround.
    half = (peak + surround) / 2.0
    outline = ((dist <= d_in) & (grey >= half[cluster])) | core  # [H, W]
    extent = np.bincount(cluster[outline], minlength=count)
    # Thickness: the radius of the largest disc inside the core, against the radius of a disc
    # of the core's area (1 for a disc, small for a thin band such as a lit rim).
    inside = cv2.distanceTransform(core.astype(np.uint8), cv2.DIST_L2, 5)
    thickness = np.zeros(count)
    np.maximum.at(thickness, labels[core], inside[core])
    highlight = (
        (peak - surround >= conf["contrast"] / 255.0)
        & (extent <= conf["max_area"] * h * w)
        & (thickness >= conf["min_thickness"] * radius)
    )
    highlight[0] = False
    return outline & highlight[cluster]


def _holes(mask: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: the pixels outside the uint8 ``mask [H, W]`` that it encloses."""
    h, w = mask.shape
    outside = np.pad(mask, 1).astype(np.uint8)  # 1 = mask; a free border to start the fill from
    flood = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(outside, flood, (0, 0), 2)  # 2 = reachable from the border
    return outside[1:-1, 1:-1] == 0


def _per_label_quantile(
    values: np.ndarray, labels: np.ndarray, count: int, q: float, default: np.ndarray
) -> np.ndarray:
    """Nearest-rank ``q``-quantile of ``values [N]`` per label in ``0..count-1`` (``labels [N]``)
    -> ``[count]``; ``default[label]`` where a label has no value."""
    order = np.lexsort((values, labels))
    n = np.bincount(labels, minlength=count)
    start = np.concatenate(([0], np.cumsum(n)[:-1]))
    pick = start + np.floor(q * np.maximum(n - 1, 0)).astype(np.int64)
    out = default.astype(np.float64).copy()
    has = n > 0
    out[has] = values[order][pick[has]]
    return out


_RULES = {"highlight": _highlight, "bright": _bright, "arnold": _arnold, "tchoulack": _tchoulack}


# --------------------------------------------------------------------------- helpers


def _merge_conf(method: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Defaults, then the caller's settings; unknown keys raise."""
    if method not in METHOD_DEFAULTS:
        raise ValueError(f"method must be one of {sorted(METHOD_DEFAULTS)}, got {method!r}")
    defaults = {**COMMON_DEFAULTS, **METHOD_DEFAULTS[method]}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown setting(s) {unknown} for method {method!r}; expected some of {sorted(defaults)}"
        )
    conf = {**defaults, **params}
    for key in ("dilate", "erode", "grow", "fill_size", "median_size"):
        if key in conf and (not isinstance(conf[key], (int, np.integer)) or conf[key] < 0):
            raise ValueError(f"setting {key!r} must be a non-negative int (pixels), got {conf[key]!r}")
    if "ring" in conf and (not isinstance(conf["ring"], (int, float)) or not conf["ring"] > 0):
        raise ValueError(f"setting 'ring' must be a positive number, got {conf['ring']!r}")
    for key in ("max_area", "surround_quantile", "min_thickness"):
        if key in conf and (not isinstance(conf[key], (int, float)) or not 0 <= conf[key] <= 1):
            raise ValueError(f"setting {key!r} must be a fraction in [0, 1], got {conf[key]!r}")
    return MappingProxyType(conf)


def _to_rgb_batch(image: ImageLike) -> tuple[torch.Tensor, bool, bool]:
    """Validate ``image`` and return (rgb ``[B, 3, H, W]`` float, unbatched, from_numpy)."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(f"image: numpy input must be uint8 [H, W, 3] or [H, W], got dtype {image.dtype}")
        if image.ndim == 3 and image.shape[-1] in (1, 3):
            chw = np.ascontiguousarray(image.transpose(2, 0, 1))
        elif image.ndim == 2:
            chw = image[None]
        else:
            raise ValueError(f"image: numpy input must have shape [H, W, 3] or [H, W], got {list(image.shape)}")
        x = torch.from_numpy(chw).float().div_(255.0)[None]
        return x.expand(-1, 3, -1, -1), True, True
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor or numpy.ndarray, got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"image: tensor must be float in [0, 1] with shape [B, C, H, W] or [C, H, W], got dtype {image.dtype}")
    if image.ndim not in (3, 4) or image.shape[-3] not in (1, 3):
        raise ValueError(
            f"image: tensor must have shape [B, C, H, W] or [C, H, W] with C in (1, 3), got {list(image.shape)}"
        )
    unbatched = image.ndim == 3
    x = image[None] if unbatched else image
    if x.numel() > 0:
        lo, hi = torch.aminmax(x)
        if not (bool(lo >= 0) and bool(hi <= 1)):  # also rejects NaN
            raise ValueError(f"image: float values must lie in [0, 1], got range [{lo.item():.4g}, {hi.item():.4g}]")
    return x.expand(-1, 3, -1, -1), unbatched, False


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` -> grey ``[B, H, W]``."""
    return _LUMA[0] * rgb[:, 0] + _LUMA[1] * rgb[:, 1] + _LUMA[2] * rgb[:, 2]


def _percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """Per-image nearest-rank quantile ``q`` in [0, 1] of ``[B, H, W]`` -> ``[B]``."""
    flat = x.flatten(1)
    k = min(flat.shape[1], max(1, round(q * (flat.shape[1] - 1)) + 1))
    return flat.kthvalue(k, dim=1).values


def _erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Shrink a bool mask ``[B, H, W]``; pixels outside the image count as inside the mask."""
    return ~dilate_mask(~mask, radius)


def _box_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Separable zero-padded box mean of ``[B, C, H, W]`` over a ``size x size`` window (kept
    over ``kornia.filters.box_blur``, which pads by reflection: the detector was tuned on zeros)."""
    pad = size // 2
    x = F.avg_pool2d(x, (1, size), stride=1, padding=(0, pad), count_include_pad=True)
    return F.avg_pool2d(x, (size, 1), stride=1, padding=(pad, 0), count_include_pad=True)


def _approx_median(x: torch.Tensor, size: int) -> torch.Tensor:
    """Median filter of ``[B, C, H, W]`` over about ``size`` pixels, run at reduced resolution
    (kept over ``kornia.filters.median_blur``, which at full resolution gathers ``size**2`` values
    per pixel: 961 for the 31 px window of a 1080p frame)."""
    if size <= 1:
        return x
    h, w = x.shape[-2:]
    factor = max(1, size // 5)
    small = F.avg_pool2d(x, factor, ceil_mode=True) if factor > 1 else x
    k = max(1, size // factor) | 1
    pad = k // 2
    padded = F.pad(small, (pad, pad, pad, pad), mode="replicate")
    med = padded.unfold(2, k, 1).unfold(3, k, 1).flatten(-2).median(-1).values
    if factor > 1:
        med = F.interpolate(med, size=(h, w), mode="bilinear", align_corners=False)
    return med
