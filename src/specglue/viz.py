"""Match and keypoint figures with matplotlib's Agg canvas (no pyplot, no global state).

Figures are built as ``matplotlib.figure.Figure`` objects attached to an Agg canvas, so
nothing is registered with pyplot: a figure is freed as soon as the caller drops it, and
importing this module changes no backend or rcParams.

Layout: the image area is drawn 1:1 with the input pixels times ``scale`` (at most
``max_width`` pixels wide), with a caption strip on top and, when a colormap is used, a
colorbar strip at the bottom. With ``path`` the figure is saved as PNG at ``dpi``; the
PNG then measures exactly ``figure_size_px(fig)`` pixels.

Inputs: images are numpy ``[H, W]`` / ``[H, W, 1|3|4]`` (uint8 in [0, 255] or float in
[0, 1]) or torch ``[C, H, W]`` / ``[1, C, H, W]`` / ``[H, W]`` in [0, 1]. Keypoints are
``[N, 2]`` pixel coordinates ``(x, y)`` with the centre of the top-left pixel at (0, 0).
Masks are ``[H, W]`` (bool or float, > 0.5 means specular).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure

from .atomic import atomic_write

logger = logging.getLogger(__name__)

ArrayLike = Union[np.ndarray, torch.Tensor]
PathLike = Union[str, Path]

#: Line colour of inlier matches (RGBA).
INLIER_COLOR: Tuple[float, float, float, float] = (0.0, 0.85, 0.0, 1.0)
#: Line colour of outlier matches (RGBA).
OUTLIER_COLOR: Tuple[float, float, float, float] = (0.95, 0.05, 0.05, 1.0)
#: Line colour when neither scores nor inliers are given (RGBA).
DEFAULT_MATCH_COLOR: Tuple[float, float, float, float] = (0.1, 0.6, 1.0, 1.0)
#: Line colour of the emphasized matches (e.g. those on glare), drawn thick over faded others.
EMPHASIS_COLOR: Tuple[float, float, float, float] = (1.0, 0.55, 0.0, 1.0)
#: Overlay colours of the specular masks of image 0 (cyan) and image 1 (magenta), RGBA.
MASK0_COLOR: Tuple[float, float, float, float] = (0.0, 1.0, 1.0, 0.45)
MASK1_COLOR: Tuple[float, float, float, float] = (1.0, 0.0, 1.0, 0.45)

DEFAULT_DPI = 120  # PNG resolution; the figure size is chosen in pixels, so this sets inches
GAP_PX = 10  # white gap between the two images, in input pixels
CAPTION_PX = 44  # height of the caption strip, in output pixels
COLORBAR_PX = 46  # height of the colorbar strip (only when a colormap is used)


# ----------------------------------------------------------------------------------------
# Conversions
# ----------------------------------------------------------------------------------------


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_rgb_image(image: ArrayLike, name: str = "image") -> np.ndarray:
    """Convert an image to float ``[H, W, 3]`` RGB in ``[0, 1]``.

    Args:
        image: numpy ``[H, W]`` / ``[H, W, C]`` (uint8 or float in [0, 1]) or torch
            ``[H, W]`` / ``[C, H, W]`` / ``[1, C, H, W]`` (float in [0, 1] or uint8);
            ``C`` in {1, 3, 4} (alpha dropped).
        name: argument name used in error messages.
    """
    is_torch = isinstance(image, torch.Tensor)
    arr = _to_numpy(image)
    if is_torch:
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim == 3:
            arr = arr.transpose(1, 2, 0)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        layout = "[C, H, W] with C in {1, 3, 4}" if is_torch else "[H, W] or [H, W, C] with C in {1, 3, 4}"
        raise ValueError(f"{name} must have shape {layout}, got {tuple(_to_numpy(image).shape)}")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if arr.dtype == bool:
        return arr.astype(np.float64)
    arr = arr.astype(np.float64)
    if arr.size and np.nanmax(arr) > 1.0 + 1e-6:
        logger.debug("%s has values > 1; assuming a [0, 255] range", name)
        arr = arr / 255.0
    return np.clip(np.nan_to_num(arr), 0.0, 1.0)


def _check_mask(mask: Optional[ArrayLike], shape: Tuple[int, int], name: str) -> Optional[np.ndarray]:
    if mask is None:
        return None
    arr = _to_numpy(mask)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != shape:
        raise ValueError(
            f"{name} must have shape [H, W] = {list(shape)} like its image, got {list(arr.shape)}"
        )
    return arr.astype(np.float64) > 0.5


def _check_kpts(kpts: ArrayLike, name: str) -> np.ndarray:
    arr = _to_numpy(kpts).astype(np.float64)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape [N, 2], got {list(arr.shape)}")
    return arr


def _check_matches(matches: ArrayLike, n0: int, n1: int) -> np.ndarray:
    """``[S, 2]`` index pairs, or a ``matches0 [M]`` vector (-1 = unmatched) -> ``[S, 2]``."""
    arr = _to_numpy(matches)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim == 1:
        if len(arr) != n0:
            raise ValueError(f"matches given as matches0 must have shape [M={n0}], got {list(arr.shape)}")
        valid = arr >= 0
        arr = np.stack([np.nonzero(valid)[0], arr[valid]], axis=1)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"matches must have shape [S, 2] (index pairs), got {list(arr.shape)}")
    arr = arr.astype(np.int64)
    out_of_range = (arr < 0).any() or (arr[:, 0] >= n0).any() or (arr[:, 1] >= n1).any()
    if arr.size and out_of_range:
        raise ValueError(f"matches index out of range: kpts0 has {n0} and kpts1 has {n1} points")
    return arr


def _check_per_match(values: Optional[ArrayLike], n: int, name: str) -> Optional[np.ndarray]:
    if values is None:
        return None
    raw = _to_numpy(values)
    arr = raw.reshape(-1) if raw.size else np.zeros(0)
    if arr.shape != (n,) or raw.ndim > 1:
        raise ValueError(f"{name} must have shape [S={n}] (one per match), got {list(raw.shape)}")
    return arr


# ----------------------------------------------------------------------------------------
# Figure helpers
# ----------------------------------------------------------------------------------------


def figure_size_px(fig: Figure, dpi: Optional[float] = None) -> Tuple[int, int]:
    """``(width, height)`` in pixels of the PNG that saving ``fig`` at ``dpi`` produces."""
    dpi = fig.dpi if dpi is None else dpi
    w, h = fig.get_size_inches()
    return int(round(w * dpi)), int(round(h * dpi))


def _new_figure(
    canvas_w: int, canvas_h: int, *, max_width: int, dpi: float, colorbar: bool
) -> Tuple[Figure, "matplotlib.axes.Axes", Optional["matplotlib.axes.Axes"], float]:
    """Figure with an image axes mapping input pixels 1:scale, a caption and a colorbar strip."""
    scale = min(1.0, max_width / canvas_w) if canvas_w > 0 else 1.0
    img_w, img_h = max(1, round(canvas_w * scale)), max(1, round(canvas_h * scale))
    bottom_px = COLORBAR_PX if colorbar else 0
    total_h = img_h + CAPTION_PX + bottom_px
    fig = Figure(figsize=(img_w / dpi, total_h / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, bottom_px / total_h, 1.0, img_h / total_h))
    ax.set_axis_off()
    cax = None
    if colorbar:
        cax = fig.add_axes((0.2, 0.45 * COLORBAR_PX / total_h, 0.6, 0.25 * COLORBAR_PX / total_h))
    return fig, ax, cax, scale


def _overlay(ax: "matplotlib.axes.Axes", mask: np.ndarray, color: Sequence[float], x0: float) -> None:
    """Draw ``mask [H, W]`` as a semi-transparent ``color`` layer with its left edge at ``x0``."""
    h, w = mask.shape
    rgba = np.zeros((h, w, 4))
    rgba[mask] = color
    ax.imshow(rgba, extent=(x0 - 0.5, x0 + w - 0.5, h - 0.5, -0.5), interpolation="nearest", zorder=2)


def _caption(fig: Figure, text: str) -> None:
    total_h = figure_size_px(fig)[1]
    fig.text(
        0.01,
        1.0 - 0.5 * CAPTION_PX / total_h,
        text,
        ha="left",
        va="center",
        fontsize=9,
        family="monospace",
    )


def _save(fig: Figure, path: Optional[PathLike], dpi: float) -> None:
    if path is None:
        return
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", facecolor="white"))
    logger.debug("saved figure to %s", path)


def _finish_axes(ax: "matplotlib.axes.Axes", width: int, height: int) -> None:
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_aspect("auto")


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------


def plot_matches(
    image0: ArrayLike,
    image1: ArrayLike,
    kpts0: ArrayLike,
    kpts1: ArrayLike,
    matches: ArrayLike,
    scores: Optional[ArrayLike] = None,
    inliers: Optional[ArrayLike] = None,
    mask0: Optional[ArrayLike] = None,
    mask1: Optional[ArrayLike] = None,
    caption: Optional[str] = None,
    path: Optional[PathLike] = None,
    *,
    stop_layer: Optional[int] = None,
    emphasis: Optional[ArrayLike] = None,
    emphasis_label: str = "emphasized",
    show_keypoints: bool = True,
    cmap: str = "viridis",
    linewidth: float = 0.8,
    max_width: int = 1600,
    dpi: float = DEFAULT_DPI,
) -> Figure:
    """Draw two images side by side with their matches.

    Colouring: with ``inliers`` given, inlier lines are ``INLIER_COLOR`` (green) and outliers
    ``OUTLIER_COLOR`` (red); otherwise with ``scores`` lines follow ``cmap`` over [0, 1] with
    a colorbar; otherwise all lines are ``DEFAULT_MATCH_COLOR``. Specular masks are overlaid
    in cyan (image 0) and magenta (image 1). The caption always states the counts
    (matches, inliers and the stop layer when given), preceded by ``caption`` if passed.

    Args:
        image0, image1: images (see the module docstring for the layouts).
        kpts0: ``[M, 2]`` keypoints of image 0; ``kpts1``: ``[N, 2]`` of image 1.
        matches: ``[S, 2]`` index pairs ``(i, j)`` into ``kpts0`` / ``kpts1``; a ``[M]``
            ``matches0`` vector (-1 unmatched) is accepted too. ``S = 0`` is fine.
        scores: ``[S]`` match confidences in [0, 1], or None.
        inliers: ``[S]`` bool, or None.
        mask0, mask1: ``[H, W]`` specular masks of each image, or None.
        caption: first caption line, e.g. the pair name.
        path: if given, save a PNG there (parents created).
        stop_layer: the layer where adaptive depth stopped, added to the caption.
        emphasis: ``[S]`` bool: these matches are drawn thick in ``EMPHASIS_COLOR`` and the
            others faded, so that a few lines (e.g. the matches on glare) stand out of many;
            their count goes in the caption as ``"<n> <emphasis_label>"``.
        show_keypoints: also draw all keypoints as small dots.
        cmap: matplotlib colormap name for ``scores``.
        linewidth: match line width in points.
        max_width: the figure is downscaled to at most this many pixels wide.
        dpi: PNG resolution.

    Returns:
        The matplotlib Figure (not registered with pyplot). Lines are one
        ``LineCollection`` with ``gid="matches"``, in the order of ``matches``.
    """
    img0, img1 = to_rgb_image(image0, "image0"), to_rgb_image(image1, "image1")
    (h0, w0), (h1, w1) = img0.shape[:2], img1.shape[:2]
    m0 = _check_mask(mask0, (h0, w0), "mask0")
    m1 = _check_mask(mask1, (h1, w1), "mask1")
    k0, k1 = _check_kpts(kpts0, "kpts0"), _check_kpts(kpts1, "kpts1")
    pairs = _check_matches(matches, len(k0), len(k1))
    n_matches = len(pairs)
    sc = _check_per_match(scores, n_matches, "scores")
    inl = _check_per_match(inliers, n_matches, "inliers")
    inl = None if inl is None else inl.astype(bool)
    emph = _check_per_match(emphasis, n_matches, "emphasis")
    emph = None if emph is None else emph.astype(bool)
    use_cmap = inl is None and sc is not None

    x1 = w0 + GAP_PX  # left edge of image 1 in canvas coordinates
    canvas_w, canvas_h = x1 + w1, max(h0, h1)
    canvas = np.ones((canvas_h, canvas_w, 3))
    canvas[:h0, :w0] = img0
    canvas[:h1, x1:] = img1

    fig, ax, cax, _ = _new_figure(canvas_w, canvas_h, max_width=max_width, dpi=dpi, colorbar=use_cmap)
    ax.imshow(canvas, extent=(-0.5, canvas_w - 0.5, canvas_h - 0.5, -0.5), interpolation="bilinear", zorder=1)
    if m0 is not None:
        _overlay(ax, m0, MASK0_COLOR, 0.0)
    if m1 is not None:
        _overlay(ax, m1, MASK1_COLOR, float(x1))
    if show_keypoints:
        for k, dx in ((k0, 0.0), (k1, float(x1))):
            if len(k):
                ax.scatter(k[:, 0] + dx, k[:, 1], s=2, c="white", edgecolors="none", alpha=0.7, zorder=3)

    if inl is not None:
        colors = np.where(inl[:, None], np.array(INLIER_COLOR), np.array(OUTLIER_COLOR))
    elif use_cmap:
        norm = Normalize(vmin=0.0, vmax=1.0)
        colormap = matplotlib.colormaps[cmap]
        colors = colormap(norm(np.clip(sc, 0.0, 1.0)))
        mappable = ScalarMappable(norm=norm, cmap=colormap)
        cb = fig.colorbar(mappable, cax=cax, orientation="horizontal")
        cb.set_label("match confidence", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    else:
        colors = np.tile(np.array(DEFAULT_MATCH_COLOR), (n_matches, 1))
    colors = np.array(colors, dtype=float).reshape(-1, 4)
    colors[:, 3] *= 0.9
    widths = np.full(n_matches, linewidth)
    if emph is not None:
        colors[~emph, 3] = 0.25
        colors[emph] = EMPHASIS_COLOR
        widths[emph] = 2.5 * linewidth
    segments = np.zeros((n_matches, 2, 2))
    if n_matches:
        segments[:, 0] = k0[pairs[:, 0]]
        segments[:, 1] = k1[pairs[:, 1]] + np.array([x1, 0.0])
        ax.scatter(segments[:, 0, 0], segments[:, 0, 1], s=4, c=colors, edgecolors="none", zorder=5)
        ax.scatter(segments[:, 1, 0], segments[:, 1, 1], s=4, c=colors, edgecolors="none", zorder=5)
    lines = LineCollection(segments, colors=colors if n_matches else None,
                           linewidths=widths if n_matches else linewidth, zorder=4)
    lines.set_gid("matches")
    ax.add_collection(lines)
    _finish_axes(ax, canvas_w, canvas_h)

    counts = [f"{n_matches} matches"]
    if inl is not None:
        ratio = inl.mean() if n_matches else 0.0
        counts.append(f"{int(inl.sum())} inliers ({ratio:.1%})")
    if emph is not None:
        counts.append(f"{int(emph.sum())} {emphasis_label}")
    if stop_layer is not None:
        counts.append(f"stopped at layer {stop_layer}")
    counts.append(f"{len(k0)}/{len(k1)} keypoints")
    text = ", ".join(counts)
    _caption(fig, text if caption is None else f"{caption}\n{text}")
    _save(fig, path, dpi)
    return fig


def plot_keypoints(
    image: ArrayLike,
    kpts: ArrayLike,
    colors: Union[str, ArrayLike, None] = None,
    scores: Optional[ArrayLike] = None,
    mask: Optional[ArrayLike] = None,
    path: Optional[PathLike] = None,
    *,
    caption: Optional[str] = None,
    cmap: str = "viridis",
    size: float = 6.0,
    max_width: int = 1200,
    dpi: float = DEFAULT_DPI,
) -> Figure:
    """Draw keypoints on an image, optionally coloured by score, with the specular mask.

    Args:
        image: image (see the module docstring for the layouts).
        kpts: ``[N, 2]`` keypoints; ``N = 0`` is fine.
        colors: one matplotlib colour, or ``[N, 3|4]`` RGB(A) in [0, 1]; overrides ``scores``.
        scores: ``[N]`` values mapped through ``cmap`` (range normalised to min..max) with a
            colorbar.
        mask: ``[H, W]`` specular mask, overlaid in cyan.
        path: if given, save a PNG there.
        caption: first caption line; the keypoint count is always shown.
        cmap, size, max_width, dpi: colormap, marker area (points^2), maximum width in
            pixels and PNG resolution.

    Returns:
        The Figure; the keypoints are a ``PathCollection`` with ``gid="keypoints"``.
    """
    img = to_rgb_image(image, "image")
    h, w = img.shape[:2]
    m = _check_mask(mask, (h, w), "mask")
    k = _check_kpts(kpts, "kpts")
    n = len(k)
    sc = None
    if scores is not None and colors is None:
        sc = _to_numpy(scores).astype(np.float64).reshape(-1)
        if sc.shape != (n,):
            raise ValueError(f"scores must have shape [N={n}], got {list(_to_numpy(scores).shape)}")
    if colors is None:
        point_colors = np.tile(np.array(to_rgba("lime")), (n, 1))
    elif isinstance(colors, str):
        point_colors = np.tile(np.array(to_rgba(colors)), (n, 1))
    else:
        c = _to_numpy(colors).astype(np.float64)
        if c.ndim != 2 or c.shape[0] != n or c.shape[1] not in (3, 4):
            raise ValueError(f"colors must be a colour name or [N={n}, 3|4], got {list(c.shape)}")
        point_colors = c if c.shape[1] == 4 else np.c_[c, np.ones(n)]

    use_cmap = sc is not None and n > 0
    fig, ax, cax, _ = _new_figure(w, h, max_width=max_width, dpi=dpi, colorbar=use_cmap)
    ax.imshow(img, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="bilinear", zorder=1)
    if m is not None:
        _overlay(ax, m, MASK0_COLOR, 0.0)
    if use_cmap:
        lo, hi = float(sc.min()), float(sc.max())
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0)
        colormap = matplotlib.colormaps[cmap]
        point_colors = colormap(norm(sc))
        fig.colorbar(ScalarMappable(norm=norm, cmap=colormap), cax=cax, orientation="horizontal")
        cax.tick_params(labelsize=7)
    pts = ax.scatter(k[:, 0], k[:, 1], s=size, c=point_colors if n else None, edgecolors="none", zorder=3)
    pts.set_gid("keypoints")
    _finish_axes(ax, w, h)
    text = f"{n} keypoints" + ("" if m is None else f", {int(m.sum())} specular pixels")
    _caption(fig, text if caption is None else f"{caption}\n{text}")
    _save(fig, path, dpi)
    return fig


def save_stacked(figures: Sequence[Figure], path: PathLike, gap_px: int = 8) -> Path:
    """Save ``figures`` one above the other, ``gap_px`` of white between them and narrower ones
    padded white on the right, as one PNG at ``path`` (written atomically)."""
    import cv2

    rows = []
    for fig in figures:
        fig.canvas.draw()
        rows.append(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    width = max(r.shape[1] for r in rows)
    parts = []
    for k, row in enumerate(rows):
        if k:
            parts.append(np.full((gap_px, width, 3), 255, np.uint8))
        parts.append(np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255))
    image = np.concatenate(parts)[..., ::-1]  # RGB -> BGR for OpenCV

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"cannot write {path}")

    return atomic_write(path, write)


__all__ = [
    "DEFAULT_MATCH_COLOR",
    "EMPHASIS_COLOR",
    "INLIER_COLOR",
    "MASK0_COLOR",
    "MASK1_COLOR",
    "OUTLIER_COLOR",
    "figure_size_px",
    "plot_keypoints",
    "plot_matches",
    "save_stacked",
    "to_rgb_image",
]
