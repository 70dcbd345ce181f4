"""Classical specular-highlight detectors, batched and in pure torch.

Shape letters: ``B`` batch, ``C`` channels (3 = RGB, 1 = grey), ``H x W`` image size.
A mask is a bool tensor ``[B, H, W]`` that is True on highlight pixels.

Four rules are available (see ``/work/shared/ANCHORS.md`` section 7 for the published ones):

- ``"highlight"`` (the default): bright clusters that are near-saturated in every channel,
  compact and much brighter than their surround, which tells highlights from bright diffuse
  surfaces (sunlit walls, sky, white paint) that the grey-level rules also flag.
- ``"bright"``: grey level above a threshold (the EndoMapper NR-SLAM bright mask).
- ``"arnold"``: Arnold et al. 2010, absolute colour thresholds plus a relative test
  against a smoothed image in which the candidate highlights were filled in.
- ``"tchoulack"``: Tchoulack et al. 2008, high intensity and low saturation relative
  to the image maxima, grown by a 3x3 window.

Every threshold is given in 0..255 units, as in the papers, and divided by 255 inside.
All the work runs on the device of the input tensor, except the connected-component labelling
of ``"highlight"`` (OpenCV, on the CPU).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any, Mapping, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

ImageLike = Union[torch.Tensor, np.ndarray]

#: The method used when ``detect`` is called without ``method`` (and by ``match_pair``'s
#: ``specular="auto"``). Chosen with ``benchmarks/detector.py`` (table in the README): IoU 0.76
#: on synthetic highlights drawn on real photos (``bright``: 0.78), 0.3 % median / 1.3 % mean
#: of the keypoints of everyday photos masked (``bright``: 7.3 % / 10.3 %, on sunlit stone,
#: white walls and sky), and 9.6 % of the matches on glare on the laparoscopic sequence
#: (``bright``: 6.0 %, no masks: 23 %). Like ``bright`` it misses dim sparkles (EAD2019).
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
                "threshold": 220.0,  # grey above this is a candidate highlight pixel
                "clip_level": 240.0,  # near-saturated: R, G and B all at least this
                "min_clipped": 0.1,  # share of a cluster's candidate pixels that must be near-saturated
                "contrast": 38.25,  # cluster's brightest grey minus its surround's mean grey, at least
                "group": 0.01,  # candidates closer than this share of the shorter side form one cluster
                "max_area": 0.05,  # largest cluster, share of the image area; larger ones are surfaces
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

            ``"highlight"`` (specglue's rule): candidates are the pixels with grey level above
            ``threshold``; candidates closer than ``group`` times the shorter image side to
            each other form one cluster, and the other pixels within that distance are its
            surround. A cluster is a highlight, and all its candidate pixels are masked, if
              - at least ``min_clipped`` of its pixels are near-saturated in every channel
                (R, G, B >= ``clip_level``: the light's colour, clipped by the sensor);
              - its brightest grey exceeds the mean grey of its surround by ``contrast``
                (a highlight outshines the surface it lies on);
              - it covers at most ``max_area`` of the image (sky and sunlit walls are large).
            White paint, pale stone and most of the sky fail the first or the last test; the
            defaults: ``threshold`` 220, ``clip_level`` 240, ``min_clipped`` 0.1,
            ``contrast`` 38.25 (0.15 of the range), ``group`` 0.01, ``max_area`` 0.05.

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
            mask = _dilate(mask, int(conf["dilate"]))
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
    keep = (~_dilate(candidates, 2)).to(rgb.dtype)[:, None]  # [B, 1, H, W]
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
        mask = _dilate(mask, int(conf["grow"]))
    return mask


def _highlight(rgb: torch.Tensor, conf: Mapping[str, Any]) -> torch.Tensor:
    grey = _luma(rgb)  # [B, H, W]
    candidate = grey > conf["threshold"] / 255.0
    clipped = (rgb.amin(1) >= conf["clip_level"] / 255.0) & candidate
    h, w = grey.shape[-2:]
    reach = max(1, round(conf["group"] * min(h, w)))
    near = _dilate(candidate, reach)  # candidates and their surround
    masks = []
    for b in range(rgb.shape[0]):
        count, labels = cv2.connectedComponents(near[b].cpu().numpy().astype(np.uint8), connectivity=8)
        labels = torch.from_numpy(labels).to(rgb.device).flatten().long()  # [H * W], 0 = background

        def per_cluster(values: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
            out = torch.zeros(count, dtype=torch.float64, device=rgb.device)
            return out.scatter_reduce(0, labels, values.flatten().double(), reduce)

        inside = candidate[b].double()
        surround = (near[b] & ~candidate[b]).double()
        area = per_cluster(inside)
        peak = per_cluster(grey[b] * inside, "amax")
        surround_mean = per_cluster(grey[b] * surround) / per_cluster(surround).clamp_min(1)
        n_clipped = per_cluster(clipped[b].double())
        highlight = (
            (n_clipped >= 1)
            & (n_clipped >= conf["min_clipped"] * area)
            & (peak - surround_mean >= conf["contrast"] / 255.0)
            & (area <= conf["max_area"] * h * w)
        )
        highlight[0] = False
        masks.append(highlight[labels].reshape(h, w) & candidate[b])
    return torch.stack(masks)


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
    for key in ("min_clipped", "group", "max_area"):
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


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow a bool mask ``[B, H, W]`` with a ``(2r+1)^2`` square."""
    if radius <= 0:
        return mask
    k = 2 * radius + 1
    grown = F.max_pool2d(mask[:, None].to(torch.float32), k, stride=1, padding=radius)
    return grown[:, 0] > 0


def _erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Shrink a bool mask ``[B, H, W]``; pixels outside the image count as inside the mask."""
    return ~_dilate(~mask, radius)


def _box_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Separable zero-padded box mean of ``[B, C, H, W]`` over a ``size x size`` window."""
    pad = size // 2
    x = F.avg_pool2d(x, (1, size), stride=1, padding=(0, pad), count_include_pad=True)
    return F.avg_pool2d(x, (size, 1), stride=1, padding=(pad, 0), count_include_pad=True)


def _approx_median(x: torch.Tensor, size: int) -> torch.Tensor:
    """Median filter of ``[B, C, H, W]`` over about ``size`` pixels, run at reduced resolution."""
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
