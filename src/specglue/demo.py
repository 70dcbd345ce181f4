"""The README demo: a package-shipped photo, a known homography, camera-fixed synthetic glare.

Everything it needs comes from scikit-image (the ``coffee`` sample photo: a glossy cup) and
from specglue itself, so it runs on a fresh install without any data download.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from .geometry import corner_error, sample_homography, warp_image, warp_points
from .confs import PIPELINE_SPECULAR_MODE
from .pipeline import MatchResult, match_pair
from .specular import sample_mask, synthesize_pair
from .viz import plot_matches, save_stacked

logger = logging.getLogger(__name__)


def demo_pair(seed: int = 3) -> Dict[str, np.ndarray]:
    """The demo images: ``image0``, ``image1`` uint8 [H, W, 3] with camera-fixed highlights,
    their highlight masks ``mask0``, ``mask1`` [H, W] and ``H`` [3, 3] mapping 0 to 1."""
    from skimage import data

    photo = data.coffee()  # [400, 600, 3] uint8
    h, w = photo.shape[:2]
    H = sample_homography(h, w, rng=seed)
    warped = warp_image(photo, H, (w, h))
    to_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1).float() / 255  # noqa: E731
    pair = synthesize_pair(to_tensor(photo), to_tensor(warped), placement="camera_fixed", seed=seed,
                           num_blobs=(15, 25), size_range=(0.01, 0.08))
    to_uint8 = lambda t: (t.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    return {"image0": to_uint8(pair.image0), "image1": to_uint8(pair.image1),
            "mask0": pair.mask0.numpy(), "mask1": pair.mask1.numpy(), "H": H}


def matches_on_glare(result: MatchResult, mask0: np.ndarray, mask1: np.ndarray, glare_margin: int = 3
                     ) -> np.ndarray:
    """[S] bool: the matches with an end within ``glare_margin`` px of a true highlight."""
    on = [sample_mask(torch.from_numpy(m)[None], torch.from_numpy(p).float()[None], glare_margin)[0] > 0.5
          for m, p in ((mask0, result.points0), (mask1, result.points1))]
    return (on[0] | on[1]).numpy()


def score(result: MatchResult, H: np.ndarray, mask0: np.ndarray, mask1: np.ndarray,
          size: tuple, glare_margin: int = 3) -> Dict[str, float]:
    """Matches, matches within ``glare_margin`` px of a highlight, precision at 3 px and corner
    error of the estimated homography."""
    p0, p1 = result.points0, result.points1
    err = np.linalg.norm(warp_points(p0, H) - p1, axis=1) if len(p0) else np.zeros(0)
    model = result.geometry.model if result.geometry is not None else None
    return {
        "matches": len(p0),
        "on_glare": int(matches_on_glare(result, mask0, mask1, glare_margin).sum()),
        "precision@3px": float((err < 3).mean()) if len(err) else 0.0,
        "corner_error_px": float(corner_error(model, H, *size)),
    }


def run_demo(out: Path, features: str = "aliked", seed: int = 0) -> str:
    """Match the demo pair without masks, with detected masks and with the true masks (the
    pipeline's ``cross`` mode); draw the first two one above the other, the matches on glare
    thick in orange.

    Returns a Markdown table of the three runs.
    """
    pair = demo_pair(seed)
    h, w = pair["image0"].shape[:2]
    rows: List[str] = [f"| masks ({PIPELINE_SPECULAR_MODE} mode) | matches | on glare | precision@3px | "
                       "corner error (px) |", "|---|---|---|---|---|"]
    figures = []
    runs = (("none", None), ("detected", "auto"), ("true masks", (pair["mask0"], pair["mask1"])))
    for label, spec in runs:
        result = match_pair(pair["image0"], pair["image1"], features=features, specular=spec,
                            specular_mode=PIPELINE_SPECULAR_MODE, geometry="homography",
                            max_num_keypoints=1024, resize=None)
        s = score(result, pair["H"], pair["mask0"], pair["mask1"], (w, h))
        rows.append(f"| {label} | {s['matches']} | {s['on_glare']} | {s['precision@3px']:.3f} | "
                    f"{s['corner_error_px']:.2f} |")
        if label != "true masks":
            caption = (f"specglue demo ({features}), camera-fixed synthetic glare: "
                       + ("no masks" if spec is None else "detected masks (cyan / magenta)"))
            figures.append(plot_matches(
                pair["image0"], pair["image1"], result.keypoints0, result.keypoints1, result.matches,
                inliers=result.geometry.inliers, mask0=result.mask0, mask1=result.mask1, caption=caption,
                emphasis=matches_on_glare(result, pair["mask0"], pair["mask1"]),
                emphasis_label="on glare (orange)", stop_layer=result.stop))
    save_stacked(figures, out)
    return "\n".join(rows)
