"""Homography benchmark on folders with ground-truth homographies (HPatches and Oxford layouts).

Two sequence layouts are recognised; each gives the pairs ``(1, k)`` for ``k = 2, 3, ...``:

- **HPatches**: ``<seq>/1.ppm`` ... ``<seq>/6.ppm`` and ``<seq>/H_1_2`` ... ``<seq>/H_1_6``
  (any image suffix of ``IMAGE_SUFFIXES``);
- **Oxford / VGG affine** (e.g. ``06_oxford_graffiti_homography``): ``img1.png`` ... and
  ``H1to2p`` ... (also ``H1to2``).

Each ``H`` file holds a 3x3 matrix (whitespace separated) mapping pixels of image 1 to image
``k``. ``root`` may be one sequence or a folder of sequences (``i_*`` / ``v_*`` in HPatches).
Images are shrunk to ``resize`` px on the long side and ``H`` is adjusted to the resized
pixels (half-pixel convention), so all thresholds are in pixels of the resized images.
Metrics are those of :mod:`specglue.eval.homography`.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from .homography import (
    SPECULAR_PLACEMENTS,
    add_common_arguments,
    add_specular,
    common_run_options,
    default_out_dir,
    evaluate,
    lazy_extractor,
    run_config,
)
from .methods import IMAGE_SUFFIXES, PairFeatures, extract_features, load_image, to_tensor

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


@dataclass(frozen=True)
class HomographyPair:
    """One pair of a sequence: ``path0``, ``path1`` and ``H_0to1 [3, 3]`` in file pixels."""

    name: str
    path0: Path
    path1: Path
    H_0to1: np.ndarray


def read_homography(path: PathLike) -> np.ndarray:
    """Read a 3x3 homography text file (9 numbers, whitespace or comma separated).

    Raises:
        ValueError: naming the file when it does not hold 9 finite numbers.
    """
    path = Path(path)
    try:
        values = [float(v) for v in re.split(r"[\s,]+", path.read_text().strip()) if v]
    except ValueError as err:
        raise ValueError(f"homography file {path} is not numeric: {err}") from None
    if len(values) != 9 or not np.all(np.isfinite(values)):
        raise ValueError(f"homography file {path} must hold 9 finite numbers, got {len(values)}")
    H = np.asarray(values, dtype=np.float64).reshape(3, 3)
    if abs(np.linalg.det(H)) < 1e-12:
        raise ValueError(f"homography in {path} is singular")
    return H


def _images_by_index(folder: Path, prefix: str) -> Dict[int, Path]:
    pattern = re.compile(rf"^{prefix}(\d+)$")
    found: Dict[int, Path] = {}
    for p in folder.iterdir():
        m = pattern.match(p.stem)
        if p.is_file() and m and p.suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(int(m.group(1)), p)
    return found


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def parse_sequence(folder: PathLike) -> List[HomographyPair]:
    """The pairs ``(1, k)`` of one sequence folder in either layout; [] if it is neither.

    Raises:
        ValueError: an image ``k`` exists but its ``H`` file is missing (or the reverse), or
            an ``H`` file is malformed.
    """
    folder = Path(folder)
    pairs: List[HomographyPair] = []
    for prefix, h_name in (("", "H_1_{}"), ("img", "H1to{}p")):
        images = _images_by_index(folder, prefix)
        if 1 not in images:
            continue
        for k in sorted(images):
            if k == 1:
                continue
            candidates = [folder / h_name.format(k)]
            if prefix == "img":
                candidates.append(folder / f"H1to{k}")
            h_path = next((c for c in candidates if c.is_file()), None)
            if h_path is None:
                raise ValueError(f"sequence {folder}: image {images[k].name} has no homography file "
                                 f"{candidates[0].name}")
            name = _safe(f"{folder.name}-1-{k}")
            pairs.append(HomographyPair(name, images[1], images[k], read_homography(h_path)))
        if pairs:
            return pairs
    return pairs


def find_homography_pairs(root: PathLike) -> List[HomographyPair]:
    """Every pair of ``root`` (a sequence) or of its sub-folders (sequences), sorted.

    Raises:
        ValueError: ``root`` is missing or holds no sequence.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"homography folder {root} does not exist")
    pairs = parse_sequence(root)
    if not pairs:
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            pairs.extend(parse_sequence(sub))
    if not pairs:
        raise ValueError(f"{root} holds no sequence: expected 1.ppm + H_1_k (HPatches) or "
                         f"img1.png + H1tokp (Oxford) in it or in its sub-folders")
    return pairs


def scaled_homography(H: np.ndarray, S0: np.ndarray, S1: np.ndarray) -> np.ndarray:
    """``H`` expressed in resized pixels: ``S1 @ H @ S0^-1`` (``S`` from :func:`load_image`)."""
    Hs = S1 @ H @ np.linalg.inv(S0)
    return Hs / Hs[2, 2]


def run(
    root: PathLike,
    *,
    features: str = "aliked",
    methods: Optional[Sequence[str]] = None,
    specular: Optional[str] = None,
    seed: int = 0,
    max_num_keypoints: int = 1024,
    resize: Optional[int] = 640,
    out_dir: Optional[PathLike] = None,
    overwrite: bool = False,
    device: Union[str, torch.device] = "cpu",
    extractor_conf: Optional[Mapping[str, Any]] = None,
    lightglue_conf: Optional[Mapping[str, Any]] = None,
    mnn_ratio: float = 0.8,
    ransac_threshold: float = 3.0,
) -> Dict[str, Any]:
    """Evaluate on an HPatches- or Oxford-style folder (both loops) and write the reports.

    Arguments as in :func:`specglue.eval.homography.run`; ``seed`` only drives the optional
    synthetic highlights. Returns the same results dict.
    """
    if specular is not None and specular not in SPECULAR_PLACEMENTS:
        raise ValueError(f"specular must be None or one of {SPECULAR_PLACEMENTS}, got {specular!r}")
    pairs = find_homography_pairs(root)
    device = torch.device(device)
    if out_dir is None:
        out_dir = default_out_dir("hpatches", features, max_num_keypoints, resize,
                                  f"-{_safe(Path(root).name)}-{specular or 'nospec'}")
    out_dir = Path(out_dir)
    config = run_config("hpatches", str(Path(root).resolve()), features=features,
                        extractor_conf=extractor_conf, seed=seed, specular=specular,
                        max_num_keypoints=max_num_keypoints, resize=resize, lightglue_conf=lightglue_conf,
                        methods=methods, mnn_ratio=mnn_ratio, ransac_threshold=ransac_threshold,
                        device=device, out_dir=out_dir,
                        pairs=[[p.name, str(p.path0), str(p.path1)] for p in pairs])
    get_extractor = lazy_extractor(features, max_num_keypoints, extractor_conf, device)

    def build(index: int, pair: HomographyPair) -> PairFeatures:
        image0, S0 = load_image(pair.path0, resize)
        image1, S1 = load_image(pair.path1, resize)
        t0, t1 = to_tensor(image0), to_tensor(image1)
        mask0 = mask1 = None
        if specular is not None:
            t0, mask0, t1, mask1 = add_specular(t0, t1, specular, int(seed) * 100003 + index)
        extractor = get_extractor()
        feats0, feats1 = extract_features(extractor, t0), extract_features(extractor, t1)
        H = scaled_homography(pair.H_0to1, S0, S1)
        info = {"image0": str(pair.path0), "image1": str(pair.path1)}
        return PairFeatures(pair.name, feats0, feats1, mask0, mask1, {"H_0to1": H}, info)

    builders = [(p.name, (lambda i=i, p=p: build(i, p))) for i, p in enumerate(pairs)]
    title = f"{Path(root).name}: {len(pairs)} pairs, {features} {max_num_keypoints} kpts, specular={specular}"
    return evaluate(builders, config, out_dir, kind="homography", title=title, overwrite=overwrite,
                    device=device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``specglue eval hpatches``."""
    parser.add_argument("root", type=Path, help="a sequence folder or a folder of sequences")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic highlights (default: 0)")
    parser.add_argument("--ransac-threshold", type=float, default=3.0, help="MAGSAC++ threshold in px (default: 3)")
    add_common_arguments(parser)


def main(args: argparse.Namespace) -> str:
    """Run from parsed arguments; returns the Markdown table (the CLI prints it)."""
    return run(args.root, **common_run_options(args))["table"]


__all__ = [
    "HomographyPair",
    "add_arguments",
    "find_homography_pairs",
    "main",
    "parse_sequence",
    "read_homography",
    "run",
    "scaled_homography",
]
