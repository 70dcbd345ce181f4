"""Render synthetic specular highlights onto images, with exact masks.

Shape letters: ``B`` batch, ``H x W`` image size. Images are float RGB in [0, 1].

A highlight is drawn as a soft opacity ``alpha`` in [0, 1] that blends the image towards
the (near-white) colour of the light: ``out = (1 - alpha) * image + alpha * light``.
Each highlight has a flat saturated core (alpha = 1) and a soft edge; the returned mask
is ``alpha >= mask_threshold`` (0.5 by default, i.e. the nominal outline of the shape).
Pixels farther than the soft edge from every highlight are returned unchanged.

Two kinds of highlight are drawn:

- blobs: ellipses whose radius is modulated by a few random harmonics (irregular,
  lobed outlines), with radii drawn log-uniformly so that many sizes appear;
- streaks: thin elongated capsules, like the glints along wet ridges.

All randomness comes from a CPU ``torch.Generator`` so results are reproducible for a
seed on any device.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch

logger = logging.getLogger(__name__)

IntOrRange = Union[int, Tuple[int, int]]


@dataclass(frozen=True)
class Highlight:
    """One highlight in pixel units (pixel centres at integer coordinates).

    Attributes:
        kind: ``"blob"`` or ``"streak"``.
        x, y: centre of the shape.
        radius: blob: mean radius along the major axis; streak: half the width.
        aspect: blob: minor/major axis ratio in (0, 1]; streak: unused (1).
        angle: orientation of the major axis (blob) or of the segment (streak), radians.
        length: streak: segment length; blob: unused (0).
        harmonics: blob outline modulation ``((amplitude, phase), ...)`` for orders 2, 3, ...
        softness: width of the soft edge in pixels (alpha goes 1 -> 0 over it).
    """

    kind: str
    x: float
    y: float
    radius: float
    aspect: float = 1.0
    angle: float = 0.0
    length: float = 0.0
    harmonics: Tuple[Tuple[float, float], ...] = ()
    softness: float = 1.0

    @property
    def extent(self) -> float:
        """Radius (px) of a disc around the centre that contains the whole soft shape."""
        if self.kind == "streak":
            return 0.5 * self.length + self.radius + self.softness
        wobble = sum(abs(a) for a, _ in self.harmonics)
        return self.radius * (1.0 + wobble) + self.softness


class SyntheticPair(NamedTuple):
    """Result of :func:`synthesize_pair`: images ``[B, 3, H, W]`` (or ``[3, H, W]``), masks ``[B, H, W]`` (or ``[H, W]``)."""

    image0: torch.Tensor
    mask0: torch.Tensor
    image1: torch.Tensor
    mask1: torch.Tensor


def sample_highlights(
    height: int,
    width: int,
    *,
    num_blobs: IntOrRange = (3, 12),
    size_range: Tuple[float, float] = (0.004, 0.06),
    streaks: IntOrRange = (0, 3),
    placement: str = "uniform",
    generator: Optional[torch.Generator] = None,
) -> list[Highlight]:
    """Draw random highlight shapes for one ``height x width`` image.

    Args:
        height, width: image size in pixels.
        num_blobs: number of blobs, or an inclusive ``(min, max)`` range drawn uniformly.
        size_range: ``(min, max)`` blob radius as a fraction of the shorter image side,
            drawn log-uniformly (so small glints outnumber big patches); at least 1.5 px.
            Streak half-widths are drawn from ``(min, 3 * min)`` and their lengths are
            6 to 25 half-widths, at most a quarter of the shorter side.
        streaks: number of streaks, or an inclusive ``(min, max)`` range.
        placement: ``"uniform"`` (centres anywhere in the image) or ``"center"``
            (Gaussian around the image centre with sigma = 1/4 of each side, as when a
            co-axial light faces the tissue in front of the camera).
        generator: CPU generator; ``None`` uses torch's global generator.

    Returns:
        The highlights, blobs first.
    """
    if placement not in ("uniform", "center"):
        raise ValueError(f"placement must be 'uniform' or 'center', got {placement!r}")
    lo, hi = size_range
    if not 0 < lo <= hi:
        raise ValueError(f"size_range must be (min, max) with 0 < min <= max, got {size_range!r}")
    n_blobs = _draw_count(num_blobs, "num_blobs", generator)
    n_streaks = _draw_count(streaks, "streaks", generator)
    short = min(height, width)

    def uniform(n: int, a: float = 0.0, b: float = 1.0) -> list[float]:
        return (a + (b - a) * torch.rand(n, generator=generator, dtype=torch.float64)).tolist()

    def centre() -> tuple[float, float]:
        if placement == "uniform":
            u, v = uniform(2)
        else:
            u, v = (0.5 + 0.25 * torch.randn(2, generator=generator, dtype=torch.float64)).clamp(0, 1).tolist()
        return u * (width - 1), v * (height - 1)

    def radius(lo_frac: float, hi_frac: float) -> float:
        (t,) = uniform(1)
        return max(1.5, short * math.exp(math.log(lo_frac) + t * (math.log(hi_frac) - math.log(lo_frac))))

    shapes = []
    for _ in range(n_blobs):
        x, y = centre()
        r = radius(lo, hi)
        aspect, angle, soft = uniform(3)
        amps = uniform(4, 0.0, 0.12)
        phases = uniform(4, 0.0, 2 * math.pi)
        shapes.append(
            Highlight(
                kind="blob",
                x=x,
                y=y,
                radius=r,
                aspect=0.45 + 0.55 * aspect,
                angle=math.pi * angle,
                harmonics=tuple(zip(amps, phases)),
                softness=max(1.0, (0.15 + 0.25 * soft) * r),
            )
        )
    for _ in range(n_streaks):
        x, y = centre()
        half_width = radius(lo, min(hi, 3 * lo))
        length_t, angle, soft = uniform(3)
        shapes.append(
            Highlight(
                kind="streak",
                x=x,
                y=y,
                radius=half_width,
                angle=math.pi * angle,
                length=min((6 + 19 * length_t) * half_width, 0.25 * short),
                softness=max(1.0, (0.3 + 0.4 * soft) * half_width),
            )
        )
    return shapes


def render_alpha(
    shapes: Sequence[Highlight], height: int, width: int, device: Union[str, torch.device, None] = None
) -> torch.Tensor:
    """Opacity ``[H, W]`` in [0, 1]: the maximum over ``shapes`` (each evaluated in its box)."""
    alpha = torch.zeros(height, width, device=device)
    for s in shapes:
        ext = s.extent
        x0, x1 = max(0, math.floor(s.x - ext)), min(width, math.ceil(s.x + ext) + 1)
        y0, y1 = max(0, math.floor(s.y - ext)), min(height, math.ceil(s.y + ext) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        ys = torch.arange(y0, y1, device=device, dtype=torch.float32)[:, None] - s.y
        xs = torch.arange(x0, x1, device=device, dtype=torch.float32)[None, :] - s.x
        # Signed distance-like value: > 0 inside, in pixels near the outline.
        inside = _streak_depth(s, xs, ys) if s.kind == "streak" else _blob_depth(s, xs, ys)
        a = _smoothstep(inside / s.softness + 0.5)
        alpha[y0:y1, x0:x1] = torch.maximum(alpha[y0:y1, x0:x1], a)
    return alpha


def synthesize(
    image: torch.Tensor,
    *,
    num_blobs: IntOrRange = (3, 12),
    size_range: Tuple[float, float] = (0.004, 0.06),
    streaks: IntOrRange = (0, 3),
    placement: str = "uniform",
    light: Optional[Sequence[float]] = None,
    mask_threshold: float = 0.5,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Add random specular highlights to images.

    Args:
        image: ``[B, 3, H, W]`` or ``[3, H, W]`` float in [0, 1].
        num_blobs, size_range, streaks, placement: see :func:`sample_highlights`;
            each image of the batch gets its own draw.
        light: RGB colour of the light in [0, 1]; ``None`` draws a near-white colour
            per image (each channel in [0.94, 1]).
        mask_threshold: the mask is ``alpha >= mask_threshold`` (0.5: the nominal outline;
            1.0: only the fully saturated core).
        generator: CPU ``torch.Generator`` to draw from.
        seed: shortcut for ``generator=torch.Generator().manual_seed(seed)``; give at most
            one of ``generator`` and ``seed``.

    Returns:
        ``(image_with_highlights, mask)``: ``[B, 3, H, W]`` float and ``[B, H, W]`` bool
        (``[3, H, W]`` and ``[H, W]`` for unbatched input), on the device of ``image``.
    """
    x, unbatched = _check_image(image, "image")
    gen = _make_generator(generator, seed)
    if x.shape[0] == 0:
        return image.clone(), torch.zeros(0, *x.shape[-2:], dtype=torch.bool, device=x.device)
    out, masks = [], []
    for img in x:
        shapes = sample_highlights(
            img.shape[-2],
            img.shape[-1],
            num_blobs=num_blobs,
            size_range=size_range,
            streaks=streaks,
            placement=placement,
            generator=gen,
        )
        colour = _light_colour(light, gen)
        o, m = _composite(img, shapes, colour, mask_threshold)
        out.append(o)
        masks.append(m)
    out_t, mask_t = torch.stack(out), torch.stack(masks)
    return (out_t[0], mask_t[0]) if unbatched else (out_t, mask_t)


def synthesize_pair(
    image0: torch.Tensor,
    image1: torch.Tensor,
    H_0to1: Optional[torch.Tensor] = None,
    *,
    placement: str = "independent",
    jitter_px: float = 3.0,
    num_blobs: IntOrRange = (3, 12),
    size_range: Tuple[float, float] = (0.004, 0.06),
    streaks: IntOrRange = (0, 3),
    light: Optional[Sequence[float]] = None,
    mask_threshold: float = 0.5,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
) -> SyntheticPair:
    """Add highlights to both images of a pair.

    Args:
        image0, image1: ``[B, 3, H, W]`` or ``[3, H, W]`` float in [0, 1]; same batch
            size and ndim, sizes may differ.
        H_0to1: ``[B, 3, 3]`` or ``[3, 3]`` homography mapping pixels of image0 to image1;
            only used by ``placement="surface_fixed"`` (passing it otherwise raises).
        placement:
            - ``"independent"``: unrelated highlights in each image (the light moved).
            - ``"camera_fixed"``: the same highlights at nearly the same image position
              in both frames (each centre moved by a random offset of at most
              ``jitter_px`` pixels). In endoscopy the light rides with the camera, so
              highlights stay put in the image while the surface moves under them.
            - ``"surface_fixed"``: highlights painted on the surface: drawn in image0
              and warped into image1 by ``H_0to1`` (a control for matchers: such marks
              are matchable texture, not view-dependent glare).
        jitter_px: maximum centre offset for ``"camera_fixed"``, in pixels.
        num_blobs, size_range, streaks, light, mask_threshold: as in :func:`synthesize`.
        generator, seed: as in :func:`synthesize`.

    Returns:
        :class:`SyntheticPair` ``(image0, mask0, image1, mask1)`` with the input shapes;
        masks are bool ``[B, H, W]`` (``[H, W]`` unbatched).
    """
    x0, unbatched0 = _check_image(image0, "image0")
    x1, unbatched1 = _check_image(image1, "image1")
    if unbatched0 != unbatched1 or x0.shape[0] != x1.shape[0]:
        raise ValueError(
            f"image0 and image1 must have the same batch layout, got {list(image0.shape)} and {list(image1.shape)}"
        )
    if placement not in ("independent", "camera_fixed", "surface_fixed"):
        raise ValueError(f"placement must be 'independent', 'camera_fixed' or 'surface_fixed', got {placement!r}")
    if (H_0to1 is not None) != (placement == "surface_fixed"):
        raise ValueError("H_0to1 is required by placement='surface_fixed' and used by no other placement")
    if jitter_px < 0:
        raise ValueError(f"jitter_px must be >= 0, got {jitter_px}")
    gen = _make_generator(generator, seed)
    if x0.shape[0] == 0:
        empty = [torch.zeros(0, *x.shape[-2:], dtype=torch.bool, device=x.device) for x in (x0, x1)]
        return SyntheticPair(image0.clone(), empty[0], image1.clone(), empty[1])
    draw = dict(num_blobs=num_blobs, size_range=size_range, streaks=streaks, generator=gen)
    homographies = None
    if H_0to1 is not None:
        homographies = H_0to1.reshape(-1, 3, 3).to(torch.float64).cpu()
        if homographies.shape[0] not in (1, x0.shape[0]):
            raise ValueError(f"H_0to1 must have shape [3, 3] or [B, 3, 3] with B={x0.shape[0]}, got {list(H_0to1.shape)}")
        homographies = homographies.expand(x0.shape[0], 3, 3)

    results: list[list[torch.Tensor]] = [[], [], [], []]
    for i in range(x0.shape[0]):
        h0, w0 = x0.shape[-2:]
        h1, w1 = x1.shape[-2:]
        shapes0 = sample_highlights(h0, w0, **draw)
        colour = _light_colour(light, gen)
        if placement == "independent":
            shapes1 = sample_highlights(h1, w1, **draw)
        elif placement == "camera_fixed":
            shapes1 = [_jitter(s, jitter_px, gen) for s in shapes0]
        else:
            shapes1 = []
        out0, m0 = _composite(x0[i], shapes0, colour, mask_threshold)
        if placement == "surface_fixed":
            out1, m1 = _composite_warped(x1[i], shapes0, (h0, w0), homographies[i], colour, mask_threshold)
        else:
            out1, m1 = _composite(x1[i], shapes1, colour, mask_threshold)
        for store, value in zip(results, (out0, m0, out1, m1)):
            store.append(value)
    stacked = [torch.stack(v) for v in results]
    if unbatched0:
        stacked = [v[0] for v in stacked]
    return SyntheticPair(*stacked)


# --------------------------------------------------------------------------- helpers


def _blob_depth(s: Highlight, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """How far (px, approx.) each pixel lies inside the blob outline; negative outside."""
    c, si = math.cos(s.angle), math.sin(s.angle)
    u = c * xs + si * ys  # along the major axis
    v = -si * xs + c * ys
    a, b = s.radius, s.radius * s.aspect
    rho = torch.sqrt((u / a) ** 2 + (v / b) ** 2)  # 1 on the unmodulated ellipse
    theta = torch.atan2(v / b, u / a)
    outline = torch.ones_like(theta)
    for order, (amp, phase) in enumerate(s.harmonics, start=2):
        outline = outline + amp * torch.cos(order * theta + phase)
    # Scale the normalised gap by the local radius so the edge width is in pixels.
    local_r = torch.sqrt((a * torch.cos(theta)) ** 2 + (b * torch.sin(theta)) ** 2)
    return (outline - rho) * local_r


def _streak_depth(s: Highlight, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Half-width minus the distance to the streak's centre segment (px)."""
    dx, dy = math.cos(s.angle), math.sin(s.angle)
    t = (xs * dx + ys * dy).clamp(-0.5 * s.length, 0.5 * s.length)
    dist = torch.sqrt((xs - t * dx) ** 2 + (ys - t * dy) ** 2)
    return s.radius - dist


def _smoothstep(t: torch.Tensor) -> torch.Tensor:
    t = t.clamp(0, 1)
    return t * t * (3 - 2 * t)


def _composite(
    img: torch.Tensor, shapes: Sequence[Highlight], colour: torch.Tensor, mask_threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend one ``[3, H, W]`` image towards ``colour`` under the shapes' alpha."""
    alpha = render_alpha(shapes, img.shape[-2], img.shape[-1], device=img.device).to(img.dtype)
    return _blend(img, alpha, colour, mask_threshold)


def _composite_warped(
    img: torch.Tensor,
    shapes: Sequence[Highlight],
    size0: tuple[int, int],
    H: torch.Tensor,
    colour: torch.Tensor,
    mask_threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render the shapes in a ``size0`` frame and warp their alpha into ``img`` by ``H``."""
    h1, w1 = img.shape[-2:]
    alpha0 = render_alpha(shapes, *size0, device=img.device)
    # Inverse warp: for each pixel of image1, sample alpha0 at H^-1 * p.
    ys, xs = torch.meshgrid(
        torch.arange(h1, dtype=torch.float64), torch.arange(w1, dtype=torch.float64), indexing="ij"
    )
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3) @ torch.linalg.inv(H).T
    pts = pts[:, :2] / pts[:, 2:].clamp_min(1e-12)
    h0, w0 = size0
    grid = torch.stack([(pts[:, 0] + 0.5) / w0 * 2 - 1, (pts[:, 1] + 0.5) / h0 * 2 - 1], -1)
    grid = grid.reshape(1, h1, w1, 2).to(device=img.device, dtype=torch.float32)
    alpha1 = torch.nn.functional.grid_sample(
        alpha0[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )[0, 0]
    return _blend(img, alpha1.to(img.dtype), colour, mask_threshold)


def _blend(
    img: torch.Tensor, alpha: torch.Tensor, colour: torch.Tensor, mask_threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    light = colour.to(device=img.device, dtype=img.dtype)[:, None, None]
    out = img * (1 - alpha) + light * alpha
    return out.clamp(0, 1), alpha >= mask_threshold


def _jitter(s: Highlight, jitter_px: float, gen: Optional[torch.Generator]) -> Highlight:
    """Move a highlight's centre by a random offset of length <= ``jitter_px``."""
    r, phi = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
    d = jitter_px * math.sqrt(r)
    return replace(s, x=s.x + d * math.cos(2 * math.pi * phi), y=s.y + d * math.sin(2 * math.pi * phi))


def _light_colour(light: Optional[Sequence[float]], gen: Optional[torch.Generator]) -> torch.Tensor:
    if light is not None:
        colour = torch.as_tensor(light, dtype=torch.float32).flatten()
        if colour.numel() != 3 or bool((colour < 0).any() | (colour > 1).any()):
            raise ValueError(f"light must be 3 values in [0, 1], got {light!r}")
        return colour
    return 0.94 + 0.06 * torch.rand(3, generator=gen)


def _draw_count(count: IntOrRange, name: str, gen: Optional[torch.Generator]) -> int:
    lo, hi = (count, count) if isinstance(count, int) else tuple(count)
    if not 0 <= lo <= hi:
        raise ValueError(f"{name} must be an int >= 0 or a (min, max) range, got {count!r}")
    return int(torch.randint(lo, hi + 1, (1,), generator=gen).item())


def _make_generator(generator: Optional[torch.Generator], seed: Optional[int]) -> Optional[torch.Generator]:
    if generator is not None and seed is not None:
        raise ValueError("give at most one of generator and seed")
    if seed is not None:
        return torch.Generator().manual_seed(seed)
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator, got device {generator.device}")
    return generator


def _check_image(image: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """Validate a ``[B, 3, H, W]`` / ``[3, H, W]`` float image; return it batched."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [B, 3, H, W] or [3, H, W], got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got dtype {image.dtype}")
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"{name} must have shape [B, 3, H, W] or [3, H, W], got {list(image.shape)}")
    if image.numel() > 0:
        lo, hi = torch.aminmax(image)
        if not (bool(lo >= 0) and bool(hi <= 1)):
            raise ValueError(f"{name}: values must lie in [0, 1], got range [{lo.item():.4g}, {hi.item():.4g}]")
    return (image[None] if image.ndim == 3 else image), image.ndim == 3
