"""Relative-pose benchmark on a SuperGlue ``pairs_with_gt`` file (e.g. the ScanNet sample).

Each line of the pairs file holds 38 whitespace-separated fields::

    name0 name1 rot0 rot1 K0[9] K1[9] T_0to1[16]

- ``name0``, ``name1``: image paths relative to the image folder;
- ``rot0``, ``rot1``: EXIF rotations as a number of 90-degree counter-clockwise turns
  (``np.rot90(image, k=rot)``) applied before extraction;
- ``K0``, ``K1``: row-major 3x3 intrinsics of the images as stored;
- ``T_0to1``: row-major 4x4 pose, ``X1 = R X0 + t``.

Blank lines and lines starting with ``#`` are skipped. Images are rotated and go to the
extractor, which shrinks them to ``resize`` px on the long side (as for
:func:`specglue.match_pair`); for scoring, keypoints are mapped back to the pixels of the stored
image (``A0``, ``A1`` in the cache), so the given ``K`` and ``T`` are used unchanged. Pose:
essential matrix with MAGSAC++ (``ransac_threshold`` px of the image the network sees, 1 px by
default as in SuperGlue) and ``recoverPose``; error ``max(rotation, translation angle)``, AUC at
5/10/20 degrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ...geometry import rot90_transform, warp_points
from ...images import load_image, to_tensor
from .. import metrics, report
from ..cache import PairFeatures, Prediction
from ..data import add_specular, safe_name
from ..runner import Benchmark, PairImages, Plan, RunOptions

PathLike = Union[str, Path]

#: fields per line of a pairs_with_gt file
NUM_FIELDS = 38


@dataclass(frozen=True)
class PosePair:
    """One line of a pairs_with_gt file."""

    name0: str
    name1: str
    rot0: int
    rot1: int
    K0: np.ndarray
    K1: np.ndarray
    T_0to1: np.ndarray

    @property
    def name(self) -> str:
        return f"{safe_name(Path(self.name0).stem)}--{safe_name(Path(self.name1).stem)}"


def parse_pairs_with_gt(path: PathLike) -> List[PosePair]:
    """Read a SuperGlue pairs_with_gt file.

    Raises:
        ValueError: naming the file and line when a line does not have 38 fields, a number is
            malformed, a rotation is not an integer, or a matrix is not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pairs file {path} does not exist")
    pairs = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != NUM_FIELDS:
            raise ValueError(
                f"{path}:{lineno}: expected {NUM_FIELDS} fields (name0 name1 rot0 rot1 K0[9] K1[9] "
                f"T_0to1[16]), got {len(fields)}; a pairs file without ground truth cannot be scored"
            )
        try:
            rot0, rot1 = int(fields[2]), int(fields[3])
            numbers = np.asarray([float(v) for v in fields[4:]], dtype=np.float64)
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: malformed number ({err})") from None
        if not np.all(np.isfinite(numbers)):
            raise ValueError(f"{path}:{lineno}: non-finite intrinsics or pose")
        K0, K1, T = numbers[:9].reshape(3, 3), numbers[9:18].reshape(3, 3), numbers[18:].reshape(4, 4)
        pairs.append(PosePair(fields[0], fields[1], rot0 % 4, rot1 % 4, K0, K1, T))
    if not pairs:
        raise ValueError(f"pairs file {path} holds no pair")
    return pairs


def _load_rotated(path: Path, rot: int) -> Tuple[np.ndarray, np.ndarray]:
    """The image turned by ``rot`` quarter turns, and ``A [3, 3]`` from its pixels to the
    stored pixels."""
    image = load_image(path, "image")
    h, w = image.shape[:2]
    R, _ = rot90_transform(w, h, rot)
    return np.ascontiguousarray(np.rot90(image, k=rot)), np.linalg.inv(R)


def network_px_scale(options: RunOptions, *shapes: Tuple[int, ...]) -> np.float64:
    """Stored pixels per pixel the network sees (the area scale of the extractor's shrink),
    averaged over images of ``shapes`` ``(H, W, ...)``: a threshold in network pixels times
    this is the same threshold in stored pixels."""
    return np.float64(np.mean([1 / np.sqrt(np.prod(options.network_scale(*shape[:2]))) for shape in shapes]))


#: the Markdown table: (header, summary key(s), format)
COLUMNS: Sequence[report.Column] = (
    *((f"AUC@{t:g}°", f"auc@{t:g}deg", "pct") for t in metrics.POSE_AUC_THRESHOLDS),
    report.MATCHES_COLUMN,
    ("inlier ratio", "inlier_ratio", "pct"),
    *report.TIMING_COLUMNS,
)


def score_pair(pair: PairFeatures, pred: Prediction, config: Mapping[str, Any]) -> Dict[str, Any]:
    """Pose error after essential-matrix MAGSAC++ (``config["ransac_threshold"]`` px of the
    images the network saw, converted to stored pixels with the pair's ``px_scale``)."""
    k0 = warp_points(pair.image0.keypoints.astype(np.float64), pair.gt["A0"])
    k1 = warp_points(pair.keypoints1(pred.view), pair.gt["A1"])
    err = metrics.pose_error(k0, k1, pred.matches, pair.gt["K0"], pair.gt["K1"], pair.gt["T_0to1"],
                             config["ransac_threshold"] * float(pair.gt["px_scale"]))
    return {"R_error": err["R"], "t_error": err["t"], "pose_error": err["pose"], "inliers": err["inliers"]}


def plot(summaries: Mapping[str, Any], records: Mapping[str, List[Dict[str, Any]]], plots_dir: Path,
         title: str) -> List[Path]:
    """Cumulative pose-error curves (``pose.png``)."""
    return [report.plot_pose({m: [r["pose_error"] for r in rs] for m, rs in records.items()},
                             plots_dir / "pose.png", title)]


def prepare(options: RunOptions, pairs_file: PathLike, images_dir: Optional[PathLike] = None) -> Plan:
    """The pairs of a pairs_with_gt file.

    Args:
        pairs_file: the SuperGlue pairs file.
        images_dir: folder the image names are relative to; None: ``<pairs dir>/images`` if it
            exists, else the pairs file's folder.
    """
    pairs_file = Path(pairs_file)
    pairs = parse_pairs_with_gt(pairs_file)
    if images_dir is None:
        images_dir = pairs_file.parent / "images" if (pairs_file.parent / "images").is_dir() else pairs_file.parent
    images_dir = Path(images_dir)
    missing = [n for p in pairs for n in (p.name0, p.name1) if not (images_dir / n).is_file()]
    if missing:
        raise ValueError(f"{len(missing)} images of {pairs_file} are missing under {images_dir}, e.g. {missing[0]}")
    if len({p.name for p in pairs}) != len(pairs):
        raise ValueError(f"{pairs_file} lists the same pair twice")

    def build(index: int, pair: PosePair) -> PairImages:
        image0, A0 = _load_rotated(images_dir / pair.name0, pair.rot0)
        image1, A1 = _load_rotated(images_dir / pair.name1, pair.rot1)
        t0, mask0, t1, mask1 = add_specular(to_tensor(image0), to_tensor(image1), options.specular,
                                            int(options.seed) * 100003 + index)
        gt = {"K0": pair.K0, "K1": pair.K1, "T_0to1": pair.T_0to1, "A0": A0, "A1": A1,
              "px_scale": network_px_scale(options, image0.shape, image1.shape)}
        info = {"image0": pair.name0, "image1": pair.name1, "rot0": pair.rot0, "rot1": pair.rot1}
        return PairImages(pair.name, t0, t1, gt, info, mask0, mask1)

    builders = [(p.name, (lambda i=i, p=p: build(i, p))) for i, p in enumerate(pairs)]
    settings = {"images_dir": str(images_dir.resolve()), "pairs_file": str(pairs_file.resolve())}
    title = (f"{pairs_file.name}: {len(pairs)} pairs, {options.features} {options.max_num_keypoints} kpts, "
             f"specular={options.specular}")
    return Plan(builders, settings, title, f"{pairs_file.stem}-{options.specular or 'nospec'}")


BENCHMARK = Benchmark(name="pose",
                      help="a SuperGlue pairs_with_gt file: relative-pose AUC at 5/10/20 degrees",
                      prepare=prepare, score_pair=score_pair,
                      summarize=metrics.summarize_pose, columns=COLUMNS, plot=plot, ransac_threshold=1.0)

__all__ = ["BENCHMARK", "COLUMNS", "NUM_FIELDS", "PosePair", "parse_pairs_with_gt", "prepare", "score_pair"]
