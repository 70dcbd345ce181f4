"""Homography benchmark on folders with ground-truth homographies (HPatches and Oxford layouts).

Two sequence layouts are recognised; each gives the pairs ``(1, k)`` for ``k = 2, 3, ...``:

- **HPatches**: ``<seq>/1.ppm`` ... ``<seq>/6.ppm`` and ``<seq>/H_1_2`` ... ``<seq>/H_1_6``
  (any image suffix of ``IMAGE_SUFFIXES``);
- **Oxford / VGG affine** (e.g. ``06_oxford_graffiti_homography``): ``img1.png`` ... and
  ``H1to2p`` ... (also ``H1to2``).

Each ``H`` file holds a 3x3 matrix (whitespace separated) mapping pixels of image 1 to image
``k``. ``root`` may be one sequence or a folder of sequences (``i_*`` / ``v_*`` in HPatches).
The images go to the extractor as stored, which shrinks them to ``resize`` px on the long side
(as for :func:`specglue.match_pair`); keypoints and ``H`` are then expressed in the pixels the
network saw (``S0``, ``S1`` in the cache; half-pixel convention), so all thresholds are in
pixels of the resized images.
Scorer, metrics, table and plots are those of :mod:`specglue.eval.benchmarks.homography`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Union

import numpy as np

from ...images import IMAGE_SUFFIXES, load_image, scale_matrix, to_tensor
from .. import metrics
from ..data import add_specular, safe_name
from ..runner import Benchmark, PairImages, Plan, RunOptions
from . import homography

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
            name = safe_name(f"{folder.name}-1-{k}")
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
    """``H`` expressed in resized pixels: ``S1 @ H @ S0^-1`` (``S`` from
    :func:`specglue.images.scale_matrix`)."""
    Hs = S1 @ H @ np.linalg.inv(S0)
    return Hs / Hs[2, 2]


def prepare(options: RunOptions, root: PathLike) -> Plan:
    """The pairs ``(1, k)`` of every sequence under ``root``; ``options.seed`` only drives the
    optional synthetic highlights."""
    pairs = find_homography_pairs(root)

    def build(index: int, pair: HomographyPair) -> PairImages:
        image0, image1 = load_image(pair.path0, "image"), load_image(pair.path1, "image")
        t0, mask0, t1, mask1 = add_specular(to_tensor(image0), to_tensor(image1), options.specular,
                                            int(options.seed) * 100003 + index)
        # scored in the pixels the network sees: S maps stored px to them
        S0, S1 = (scale_matrix(*options.network_scale(*image.shape[:2])) for image in (image0, image1))
        gt = {"H_0to1": scaled_homography(pair.H_0to1, S0, S1), "S0": S0, "S1": S1}
        return PairImages(pair.name, t0, t1, gt,
                          {"image0": str(pair.path0), "image1": str(pair.path1)}, mask0, mask1)

    builders = [(p.name, (lambda i=i, p=p: build(i, p))) for i, p in enumerate(pairs)]
    settings = {"root": str(Path(root).resolve()), "pairs": [[p.name, str(p.path0), str(p.path1)] for p in pairs]}
    title = (f"{Path(root).name}: {len(pairs)} pairs, {options.features} {options.max_num_keypoints} kpts, "
             f"specular={options.specular}")
    return Plan(builders, settings, title, f"{safe_name(Path(root).name)}-{options.specular or 'nospec'}")


BENCHMARK = Benchmark(name="hpatches",
                      help="an HPatches-style folder (1.ppm..6.ppm, H_1_k) or the Oxford layout (img1, H1to2p)",
                      prepare=prepare, score_pair=homography.score_pair,
                      summarize=metrics.summarize_homography, columns=homography.COLUMNS,
                      plot=homography.plot)

__all__ = [
    "BENCHMARK",
    "HomographyPair",
    "find_homography_pairs",
    "parse_sequence",
    "prepare",
    "read_homography",
    "scaled_homography",
]
