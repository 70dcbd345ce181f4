"""The field of view of an endoscope: a region-of-interest mask ``[H, W]`` bool.

An endoscope images its scene through a round (or octagonal, or rectangular) stop: the frame is
a bright-ish view inside a near-black surround, with a sharp edge, at the same pixels in every
frame of a video. Keypoints on that edge or in the surround are noise (the rim is a strong,
static edge), so the extractors can be restricted to the view.

Method of :func:`estimate_roi` (all on a copy shrunk to :data:`WORK_SIDE` px, long side):

1. brightness = max over R, G, B, median-filtered (5x5: JPEG blocks and noise in the surround);
   with several frames, the per-pixel maximum over them (the lumen, shadows and instruments
   move, the surround stays black);
2. dark = brightness below :data:`DARK_LEVEL`; the *surround* = the dark pixels connected to the
   image border; the view = its complement, holes filled (a dark lumen inside the view stays),
   largest connected component;
3. the view is made convex (its convex hull), which also puts back a dark lumen that touches
   the rim; dark "notches" of the hull that are black with a sharp edge (the rim itself, e.g.
   the concave edges of an undistorted view) stay outside, the others (a soft-edged lumen, dark
   but not black shadows) inside;
4. the result is refused (None: an ordinary photo) unless the surround covers at least
   :data:`MIN_SURROUND` of the image, is more than a thin frame (:data:`MIN_SURROUND_CORE`;
   rectified photos have black frames of a few px) and uniformly very dark, the view (notches
   handled as in 3.) is nearly convex (IoU with its hull), and the edge of the view is sharp
   along most of its length. This rejects night skies over a skyline (not convex, partly soft),
   dark corners and vignetting (not black, soft edges);
5. the working-size mask is resized to the input size (bilinear, threshold 1/2), so its edge
   is accurate to about one working pixel (3 px of a 1920x1080 frame).

Measured on the shared data (``tests/features/test_roi.py``): IoU 0.974-0.977 with the
field-of-view mask of the sinus sequence (1920x1080, one frame or several, also shrunk to 960
and 480 px; the reference mask lies ~4 px inside the visible rim); the octagonal EAD2019 views
are found; all 69 ordinary photos (landmarks, ScanNet, graffiti, TUM) give None. About 25 ms
for one 1920x1080 frame.

A frame that the view fills completely (e.g. a laparoscope image cropped inside its circle) has
no surround and gives None, which callers treat as "the whole image".

:func:`roi_from_file` reads a user-given mask image instead (non-zero = inside).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

logger = logging.getLogger(__name__)

#: numpy uint8 ``[H, W, 3]`` RGB or ``[H, W]`` grey, or a torch float tensor ``[C, H, W]`` in
#: [0, 1] with C = 1 or 3 (or ``[B, C, H, W]``: B frames)
ImageLike = Union[np.ndarray, torch.Tensor]

#: what :func:`resolve_roi` accepts: None / "none", "auto", a mask file, a mask [H, W]
RoiInput = Union[None, str, Path, np.ndarray, torch.Tensor]

#: most frames :func:`resolve_roi` reads for ``"auto"`` (evenly spaced over the sequence)
ROI_FRAMES = 32
#: long side (px) of the copy the estimation runs on; smaller images are used as they are
WORK_SIDE = 640
#: brightness (max of R, G, B; 0..255, after the median filter) under which a pixel is dark
DARK_LEVEL = 24.0
#: side (px, odd) of the median filter applied before thresholding (JPEG noise in the surround)
MEDIAN_SIZE = 5
#: the surround must cover at least this fraction of the image (the octagonal corners of EAD2019
#: frames cover 3.3 %)
MIN_SURROUND = 0.015
#: ... and at least this fraction of the image must be surround farther than THIN_SURROUND x the
#: short side from the view: the black frame of a few px that rectified photos (ScanNet) have,
#: with a small black corner wedge, is no endoscope stop (ScanNet <= 0.2 %, EAD2019 corners 2.3 %)
MIN_SURROUND_CORE = 0.01
#: see MIN_SURROUND_CORE (fraction of the short side)
THIN_SURROUND = 0.015
#: ... and at least this fraction of its pixels must be under DARK_LEVEL / 2 (uniformly black:
#: endoscopes >= 0.96; dark walls, shadows and dusk skies are mostly lighter)
MIN_SURROUND_BLACK = 0.9
#: the view (with soft-edged notches such as a lumen at the rim filled) must have at least this
#: IoU with its convex hull (endoscopes: >= 0.988; a floodlit building under a night sky: 0.93)
MIN_CONVEXITY = 0.95
#: brightness step (0..255 per px of the working image) that counts as a sharp edge
SHARP_GRADIENT = 12.0
#: fraction of the view's edge (away from the image border) that must be sharp (endoscopes:
#: >= 0.99 on the shared data; a lumen touching the rim in a single frame lowers it)
MIN_SHARP_EDGE = 0.75
#: a hull notch counts as surround when at least this fraction of its edge with the view is
#: sharp ...
NOTCH_SHARP = 0.5
#: ... and at least half of its pixels are under this brightness, black as the surround (the
#: concave edges of an undistorted sinus view: 0.8-0.9 of them; tree shadows of a photo seen
#: through a round stop: <= 0.2, so they stay in the view)
NOTCH_BLACK_LEVEL = 8


def estimate_roi(images: Union[ImageLike, Sequence[ImageLike]]) -> Optional[np.ndarray]:
    """The field of view of an endoscope from one frame or several frames of one video.

    Args:
        images: one image (numpy uint8 ``[H, W, 3]`` RGB / ``[H, W]`` grey, or torch float
            ``[C, H, W]`` in [0, 1], C = 1 or 3; a tensor ``[B, C, H, W]`` is B frames), or a
            sequence of them, all ``H x W``: the view is estimated once from all of them.

    Returns:
        ``[H, W]`` bool, True inside the view, or None when the images have no dark surround
        with a sharp edge (an ordinary photo, or a view that fills the whole frame).

    Raises:
        ValueError: no image, an image of the wrong dtype, shape or value range, or images of
        different sizes.
    """
    frames = _as_frames(images)
    return _estimate(iter(frames), _check_frame(frames[0], 0))


def resolve_roi(roi: RoiInput, images: Sequence[Union[ImageLike, str, Path]], shape: Tuple[int, int],
                name: str = "roi") -> Optional[np.ndarray]:
    """The region of interest that a user setting asks for.

    Args:
        roi: ``None`` or ``"none"`` (no region), ``"auto"`` (:func:`estimate_roi` from
            ``images``, at most :data:`ROI_FRAMES` of them, evenly spaced), a mask image
            file (:func:`roi_from_file`), or a mask array / tensor ``[H, W]`` (non-zero inside).
        images: the frames the region applies to (ImageLike or image paths, all ``H x W``);
            only read for ``"auto"``, paths one at a time.
        shape: ``(H, W)`` of the images.
        name: how error messages call the setting.

    Returns:
        ``[H, W]`` bool, True inside, or None (detect everywhere).

    Raises:
        ValueError: an unknown string, a mask of another size than ``shape``, an unreadable file,
        or images of different sizes (``"auto"``).
    """
    expected = (int(shape[0]), int(shape[1]))
    if roi is None or (isinstance(roi, str) and roi == "none"):
        return None
    if isinstance(roi, str) and roi == "auto":
        images = list(images)
        if not images:
            raise ValueError(f"{name}='auto' needs at least one image")
        if len(images) > ROI_FRAMES:
            picks = np.linspace(0, len(images) - 1, ROI_FRAMES).round().astype(int)
            images = [images[i] for i in picks]
        return _estimate(_loaded(images, expected), expected)
    if isinstance(roi, str) and not Path(roi).is_file():
        raise ValueError(f"{name} must be 'auto', 'none' or a mask image file; {roi!r} is no file")
    if isinstance(roi, (str, Path)):
        return roi_from_file(roi, expected)
    if isinstance(roi, torch.Tensor):
        roi = roi.detach().cpu().numpy()
    if isinstance(roi, np.ndarray):
        array = roi[..., 0] if roi.ndim == 3 and roi.shape[2] == 1 else roi
        if array.shape != expected:
            raise ValueError(f"{name}: a mask must be [H, W] = {list(expected)} like the images, "
                             f"got shape {list(roi.shape)}")
        return array != 0
    raise ValueError(f"{name} must be None, 'none', 'auto', a mask file or a mask array [H, W], "
                     f"got {type(roi).__name__}")


def roi_from_file(path: Union[str, Path], shape: Tuple[int, int]) -> np.ndarray:
    """A field-of-view mask read from an image file (non-zero = inside).

    Args:
        path: the mask image (any format OpenCV reads; read by :func:`specglue.specular.read_mask`:
            non-zero in any channel is inside).
        shape: ``(H, W)`` the images it applies to.

    Returns:
        ``[H, W]`` bool, True inside the view.

    Raises:
        FileNotFoundError: ``path`` is no file. ValueError: it cannot be read, or its size is
        not ``shape`` (the message names the file, the expected and the found size).
    """
    from ..specular.io import read_mask  # local: keeps this module importable on its own

    path = Path(path)
    mask = read_mask(path)
    expected = (int(shape[0]), int(shape[1]))
    if mask.shape != expected:
        raise ValueError(
            f"field-of-view mask {path}: expected size {expected[0]}x{expected[1]} (H x W) like "
            f"the images, found {mask.shape[0]}x{mask.shape[1]}"
        )
    return mask


# --------------------------------------------------------------------------------------------
# input handling


def _as_frames(images: Union[ImageLike, Sequence[ImageLike]]) -> List[ImageLike]:
    """The frames as a list of checked ``[H, W(, C)]`` uint8 arrays / ``[C, H, W]`` tensors."""
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        frames = list(images)
    elif isinstance(images, (np.ndarray, torch.Tensor)):
        frames = [images]
    elif isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        frames = list(images)
    else:
        raise ValueError(f"images must be an image or a sequence of images (numpy uint8 or torch "
                         f"float), got {type(images).__name__}")
    if not frames:
        raise ValueError("estimate_roi needs at least one image, got an empty sequence")
    sizes = [_check_frame(f, i) for i, f in enumerate(frames)]
    if any(s != sizes[0] for s in sizes):
        raise ValueError(f"all images must have the same size (frames of one video); found sizes "
                         f"(H, W) {sorted(set(sizes))}")
    return frames


def _check_frame(frame: ImageLike, index: int) -> Tuple[int, int]:
    """Check one frame; return its ``(H, W)``."""
    name = f"image {index}"
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8:
            raise ValueError(f"{name}: a numpy image must be uint8 [H, W, 3] RGB or [H, W] grey, "
                             f"got dtype {frame.dtype} (pass floats as a torch tensor [C, H, W])")
        if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3))):
            raise ValueError(f"{name}: a numpy image must be [H, W, 3] or [H, W], got shape "
                             f"{frame.shape}")
        h, w = frame.shape[:2]
    elif isinstance(frame, torch.Tensor):
        if not frame.is_floating_point():
            raise ValueError(f"{name}: a torch image must be float in [0, 1], got dtype "
                             f"{frame.dtype} (divide uint8 images by 255)")
        if frame.dim() != 3 or frame.shape[0] not in (1, 3):
            raise ValueError(f"{name}: a torch image must be [C, H, W] with C = 1 or 3, got shape "
                             f"{tuple(frame.shape)}")
        h, w = frame.shape[1:]
        if frame.numel() and float(frame.max()) > 1.0 + 1e-3:
            raise ValueError(f"{name}: a torch image must be in [0, 1], its maximum is "
                             f"{float(frame.max()):.3g} (divide 0-255 images by 255)")
    else:
        raise ValueError(f"{name}: expected a numpy array or a torch tensor, got "
                         f"{type(frame).__name__}")
    if h < 2 or w < 2:
        raise ValueError(f"{name}: too small ({h}x{w})")
    return int(h), int(w)


def _brightness(frame: ImageLike, size: Tuple[int, int]) -> np.ndarray:
    """Max of the channels, 0..255 float32, resized to ``size = (w', h')``: ``[h', w']``."""
    if isinstance(frame, torch.Tensor):
        array = frame.detach().float().amax(dim=0).cpu().numpy() * 255.0
    else:
        array = frame[:, :, 0] if frame.ndim == 3 and frame.shape[2] == 1 else frame
        if array.ndim == 3 and (array.shape[1], array.shape[0]) != size:
            # shrinking first is cheaper than the channel max at full size
            array = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
        array = array.max(axis=2) if array.ndim == 3 else array
        array = array.astype(np.float32)
    if (array.shape[1], array.shape[0]) != size:
        array = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    return np.clip(array, 0, 255)


# --------------------------------------------------------------------------------------------
# estimation


def _denoise(brightness: np.ndarray) -> np.ndarray:
    """The median filter of :data:`MEDIAN_SIZE` of ``[h, w]`` float 0..255, as uint8 ``[h, w]``
    (before the maximum over frames, so that the noise of each frame does not add up)."""
    image = np.round(brightness).astype(np.uint8)
    return cv2.medianBlur(image, MEDIAN_SIZE) if min(image.shape) > 2 * MEDIAN_SIZE else image


def _loaded(paths_or_images: Sequence[Union[ImageLike, str, Path]], shape: Tuple[int, int]
            ) -> Iterator[ImageLike]:
    """The frames one at a time, paths read as RGB uint8; each must be ``shape``."""
    from ..images import load_image  # local: keeps this module importable on its own

    for i, item in enumerate(paths_or_images):
        frame = load_image(item, str(item)) if isinstance(item, (str, Path)) else item
        found = _check_frame(frame, i)
        if found != shape:
            where = str(item) if isinstance(item, (str, Path)) else f"image {i}"
            raise ValueError(f"{where}: expected size {shape[0]}x{shape[1]} (H x W) like the other "
                             f"frames, found {found[0]}x{found[1]}")
        yield frame


def _estimate(frames: Iterator[ImageLike], shape: Tuple[int, int]) -> Optional[np.ndarray]:
    """:func:`estimate_roi` of checked frames of size ``shape = (H, W)``, read one at a time."""
    h, w = shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # (w', h') for OpenCV
    brightness, count = None, 0
    for frame in frames:
        b = _denoise(_brightness(frame, size))
        brightness = b if brightness is None else np.maximum(brightness, b)
        count += 1
    view = _estimate_view(brightness)
    if view is None:
        return None
    if view.shape != (h, w):
        view = cv2.resize(view.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    logger.debug("field of view: %.1f %% of the %dx%d image, from %d frame(s)",
                 100 * view.mean(), w, h, count)
    return view


def _estimate_view(brightness: np.ndarray) -> Optional[np.ndarray]:
    """The view ``[h, w]`` bool from the denoised brightness ``[h, w]`` uint8, or None."""
    view, stats = _view_and_stats(brightness)
    reason = _refusal(stats)
    if reason is not None:
        logger.debug("no field of view: %s", reason)
        return None
    return view


def _view_and_stats(brightness: np.ndarray) -> Tuple[Optional[np.ndarray], dict]:
    """The candidate view ``[h, w]`` bool (None: no dark surround) from the denoised brightness
    ``[h, w]`` uint8, and the measures that :func:`_refusal` judges it by."""
    h, w = brightness.shape
    surround = _border_connected(brightness < DARK_LEVEL)
    view = _largest_component(_fill_holes(~surround)) if surround.any() else None
    if view is None:
        return None, {"surround": float(surround.mean())}
    hull = _convex_hull(view)
    gradient = _gradient(brightness)
    final = _keep_sharp_notches(hull, view, brightness, gradient)
    outside = ~final  # the surround proper: dark notches put back into the view are not in it
    # distance (px) of each surround pixel from the view (outside the image counts as surround)
    padded = np.pad(outside.astype(np.uint8), 1, constant_values=1)
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    stats = {
        "surround": float(outside.mean()),
        "core": float((depth > THIN_SURROUND * min(h, w)).mean()),
        "black": float((brightness[outside] < DARK_LEVEL / 2).mean()) if outside.any() else 0.0,
        # a lumen notch is back in ``final``; what the hull adds beyond it is black surround
        "convexity": float(final.sum() / max(1, hull.sum())),
        "sharp": _edge_sharpness(view, gradient),
    }
    return final, stats


def _refusal(stats: dict) -> Optional[str]:
    """Why the candidate described by ``stats`` is no field of view, or None if it is one."""
    if "convexity" not in stats:
        return "no view"
    if stats["surround"] < MIN_SURROUND:
        return f"dark surround {100 * stats['surround']:.1f} % < {100 * MIN_SURROUND:.1f} %"
    if stats["core"] < MIN_SURROUND_CORE:
        return (f"dark surround mostly a thin frame ({100 * stats['core']:.1f} % of the image "
                f"farther than {THIN_SURROUND} of the short side from the view)")
    if stats["black"] < MIN_SURROUND_BLACK:
        return f"surround not uniformly black ({stats['black']:.2f})"
    if stats["convexity"] < MIN_CONVEXITY:
        return f"view not convex (IoU with its hull {stats['convexity']:.3f})"
    if stats["sharp"] < MIN_SHARP_EDGE:
        return f"soft edge ({stats['sharp']:.2f} sharp)"
    return None


def _border_connected(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask [h, w]`` bool connected (8-neighbours) to the image border."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    keep = np.zeros(n, bool)
    keep[np.unique(border)] = True
    keep[0] = False
    return keep[labels]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask [h, w]`` with the holes (background not connected to the border) filled."""
    return ~_border_connected(~mask)


def _largest_component(mask: np.ndarray) -> Optional[np.ndarray]:
    """The largest 8-connected component of ``mask [h, w]`` bool, or None if it is empty."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n < 2:
        return None
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _convex_hull(mask: np.ndarray) -> np.ndarray:
    """The convex hull of ``mask [h, w]`` bool, as a mask of the same size."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    hull = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(hull, [cv2.convexHull(np.concatenate(contours))], 1)
    return hull.astype(bool) | mask


def _gradient(image: np.ndarray) -> np.ndarray:
    """Largest brightness step per px in a 3x3 neighbourhood, ``[h, w]`` float32."""
    image = image.astype(np.float32)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3) / 8
    return cv2.dilate(np.hypot(gx, gy), np.ones((3, 3), np.uint8))


def _inner_edge(region: np.ndarray) -> np.ndarray:
    """The pixels of ``region`` next to a pixel outside it (not counting the image border)."""
    eroded = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8),
                       borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return region & ~eroded.astype(bool)


def _edge_sharpness(view: np.ndarray, gradient: np.ndarray) -> float:
    """Fraction of the edge pixels of ``view`` (away from the image border) on a sharp step."""
    edge = _inner_edge(view)
    if not edge.any():
        return 0.0
    return float((gradient[edge] >= SHARP_GRADIENT).mean())


def _keep_sharp_notches(hull: np.ndarray, view: np.ndarray, brightness: np.ndarray,
                        gradient: np.ndarray) -> np.ndarray:
    """The hull ``[h, w]`` bool minus its notches (hull pixels outside the view) that look like
    surround: black, with a sharp edge. Dark notches with soft edges (a lumen at the rim) or not
    black (shadows, dark objects) stay in."""
    notches = hull & ~view
    if not notches.any():
        return hull
    n, labels = cv2.connectedComponents(notches.astype(np.uint8), connectivity=8)
    ring = cv2.dilate(notches.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & view
    sharp = ring & (gradient >= SHARP_GRADIENT)
    # label each edge pixel of the view with the notch it touches
    touching = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int64)
    total = np.bincount(touching[ring], minlength=n)
    n_sharp = np.bincount(touching[sharp], minlength=n)
    area = np.bincount(labels.ravel(), minlength=n)
    n_black = np.bincount(labels[brightness < NOTCH_BLACK_LEVEL], minlength=n)
    cut = (n_sharp >= NOTCH_SHARP * np.maximum(total, 1)) & (2 * n_black >= area)
    cut[0] = False
    return hull & ~cut[labels]
