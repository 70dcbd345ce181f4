"""Relative-pose benchmark on a SuperGlue ``pairs_with_gt`` file (e.g. the ScanNet sample).

Each line of the pairs file holds 38 whitespace-separated fields::

    name0 name1 rot0 rot1 K0[9] K1[9] T_0to1[16]

- ``name0``, ``name1``: image paths relative to the image folder;
- ``rot0``, ``rot1``: EXIF rotations as a number of 90-degree counter-clockwise turns
  (``np.rot90(image, k=rot)``) applied before extraction;
- ``K0``, ``K1``: row-major 3x3 intrinsics of the images as stored;
- ``T_0to1``: row-major 4x4 pose, ``X1 = R X0 + t``.

Blank lines and lines starting with ``#`` are skipped. Images are rotated, shrunk to
``resize`` px on the long side, and features are extracted and matched in that frame; for
scoring, keypoints are mapped back to the pixels of the stored image (``A0``, ``A1`` in the
cache), so the given ``K`` and ``T`` are used unchanged. Pose: essential matrix with MAGSAC++
(``ransac_threshold`` px in the resized frame, 1 px by default as in SuperGlue) and
``recoverPose``; error ``max(rotation, translation angle)``, AUC at 5/10/20 degrees.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from . import metrics
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
from .methods import (
    FeatureCache,
    PairFeatures,
    PredictionCache,
    extract_features,
    load_image,
    to_tensor,
)

logger = logging.getLogger(__name__)

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
        stem = lambda s: re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(s).stem)  # noqa: E731
        return f"{stem(self.name0)}--{stem(self.name1)}"


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


def rotation_transform(width: int, height: int, rot: int) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Pixel map of ``np.rot90(image, k=rot)`` on a ``width x height`` image.

    Returns:
        ``(A [3, 3], (width', height'))`` with ``[x', y', 1] = A [x, y, 1]`` (pixel centres at
        integers) and the rotated size.
    """
    A = np.eye(3)
    w, h = int(width), int(height)
    for _ in range(int(rot) % 4):
        # one counter-clockwise turn: column x becomes row (w - 1 - x), row y becomes column y
        step = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w - 1.0], [0.0, 0.0, 1.0]])
        A = step @ A
        w, h = h, w
    return A, (w, h)


def _load_rotated(path: Path, rot: int, resize: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """The image rotated then resized, and ``A [3, 3]`` from its pixels to the stored pixels."""
    image, _ = load_image(path, None)
    h, w = image.shape[:2]
    R, (rw, rh) = rotation_transform(w, h, rot)
    image = np.ascontiguousarray(np.rot90(image, k=rot))
    sx = sy = 1.0
    if resize is not None and max(rw, rh) > resize:
        import cv2

        scale = resize / max(rw, rh)
        nw, nh = max(1, round(rw * scale)), max(1, round(rh * scale))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = nw / rw, nh / rh
    S = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
    return image, np.linalg.inv(S @ R)


def _to_stored(points: np.ndarray, A: np.ndarray) -> np.ndarray:
    if len(points) == 0:
        return points.reshape(0, 2).astype(np.float64)
    ph = np.concatenate([points.astype(np.float64), np.ones((len(points), 1))], axis=1) @ A.T
    return ph[:, :2] / ph[:, 2:]


def score_pose(out_dir: PathLike, method_names: Optional[Sequence[str]] = None,
               ransac_threshold: float = 1.0) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[Dict[str, Any]]]]:
    """Loop 2: pose errors of the cached predictions.

    Args:
        ransac_threshold: essential-matrix inlier threshold in px of the extracted (resized)
            images, converted to stored pixels with the pair's scale.

    Returns:
        ``(summaries, records)`` per method (see :func:`metrics.summarize_pose`).
    """
    out_dir = Path(out_dir)
    cache = FeatureCache(out_dir / "features.h5")
    names = cache.names()
    if not names:
        raise ValueError(f"{out_dir / 'features.h5'} holds no pair: run the export first")
    if method_names is None:
        method_names = sorted(p.stem for p in (out_dir / "predictions").glob("*.h5"))
    preds = {m: PredictionCache(out_dir / "predictions" / f"{m}.h5").read_all() for m in method_names}
    records: Dict[str, List[Dict[str, Any]]] = {m: [] for m in method_names}
    for name in tqdm(names, desc="score", leave=False):
        pair = cache.read(name)
        A0, A1 = pair.gt["A0"], pair.gt["A1"]
        k0 = _to_stored(pair.feats0["keypoints"], A0)
        k1 = _to_stored(pair.feats1["keypoints"], A1)
        # px in extracted images -> stored px: the mean magnification of A (area scale)
        scale = float(np.mean([np.sqrt(abs(np.linalg.det(A0[:2, :2]))), np.sqrt(abs(np.linalg.det(A1[:2, :2])))]))
        for m in method_names:
            if name not in preds[m]:
                raise ValueError(f"pair {name!r} has no prediction of {m!r} in {out_dir / 'predictions'}")
            p = preds[m][name]
            err = metrics.pose_error(k0, k1, p.matches, pair.gt["K0"], pair.gt["K1"], pair.gt["T_0to1"],
                                     ransac_threshold * scale)
            records[m].append({
                "pair": name,
                "num_matches": p.num_matches,
                "num_keypoints0": len(k0),
                "num_keypoints1": len(k1),
                "R_error": err["R"],
                "t_error": err["t"],
                "pose_error": err["pose"],
                "inliers": err["inliers"],
                "time_s": p.time_s,
                "stop": p.stop,
            })
    return {m: metrics.summarize_pose(records[m]) for m in method_names}, records


def run(
    pairs_file: PathLike,
    images_dir: Optional[PathLike] = None,
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
    ransac_threshold: float = 1.0,
) -> Dict[str, Any]:
    """Relative-pose evaluation of a pairs_with_gt file (both loops) with reports.

    Args:
        pairs_file: the SuperGlue pairs file.
        images_dir: folder the image names are relative to; None: ``<pairs dir>/images`` if it
            exists, else the pairs file's folder.
        specular: optional synthetic highlights (``independent`` / ``camera_fixed``) so the
            specular modes can be compared; masks come from the synthesis.
        ransac_threshold: essential-matrix threshold in px of the resized images (default 1).
        Other arguments as in :func:`specglue.eval.homography.run`.

    Returns:
        ``{"config", "methods", "summary", "per_pair", "table", "files"}``.
    """
    if specular is not None and specular not in SPECULAR_PLACEMENTS:
        raise ValueError(f"specular must be None or one of {SPECULAR_PLACEMENTS}, got {specular!r}")
    pairs_file = Path(pairs_file)
    pairs = parse_pairs_with_gt(pairs_file)
    if images_dir is None:
        images_dir = pairs_file.parent / "images" if (pairs_file.parent / "images").is_dir() else pairs_file.parent
    images_dir = Path(images_dir)
    missing = [n for p in pairs for n in (p.name0, p.name1) if not (images_dir / n).is_file()]
    if missing:
        raise ValueError(f"{len(missing)} images of {pairs_file} are missing under {images_dir}, e.g. {missing[0]}")
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"{pairs_file} lists the same pair twice")
    device = torch.device(device)
    if out_dir is None:
        out_dir = default_out_dir("pose", features, max_num_keypoints, resize,
                                  f"-{pairs_file.stem}-{specular or 'nospec'}")
    out_dir = Path(out_dir)
    config = run_config("pose", str(images_dir.resolve()), features=features,
                        extractor_conf=extractor_conf, seed=seed, specular=specular,
                        max_num_keypoints=max_num_keypoints, resize=resize, lightglue_conf=lightglue_conf,
                        methods=methods, mnn_ratio=mnn_ratio, ransac_threshold=ransac_threshold,
                        device=device, out_dir=out_dir, pairs_file=str(pairs_file.resolve()))
    get_extractor = lazy_extractor(features, max_num_keypoints, extractor_conf, device)

    def build(index: int, pair: PosePair) -> PairFeatures:
        image0, A0 = _load_rotated(images_dir / pair.name0, pair.rot0, resize)
        image1, A1 = _load_rotated(images_dir / pair.name1, pair.rot1, resize)
        t0, t1 = to_tensor(image0), to_tensor(image1)
        mask0 = mask1 = None
        if specular is not None:
            t0, mask0, t1, mask1 = add_specular(t0, t1, specular, int(seed) * 100003 + index)
        extractor = get_extractor()
        feats0, feats1 = extract_features(extractor, t0), extract_features(extractor, t1)
        gt = {"K0": pair.K0, "K1": pair.K1, "T_0to1": pair.T_0to1, "A0": A0, "A1": A1}
        info = {"image0": pair.name0, "image1": pair.name1, "rot0": pair.rot0, "rot1": pair.rot1}
        return PairFeatures(pair.name, feats0, feats1, mask0, mask1, gt, info)

    builders = [(p.name, (lambda i=i, p=p: build(i, p))) for i, p in enumerate(pairs)]
    title = f"{pairs_file.name}: {len(pairs)} pairs, {features} {max_num_keypoints} kpts, specular={specular}"
    return evaluate(builders, config, out_dir, kind="pose", title=title, overwrite=overwrite,
                    device=device, scorer=score_pose)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``specglue eval pose``."""
    parser.add_argument("pairs", type=Path, help="SuperGlue pairs_with_gt file")
    parser.add_argument("--images", type=Path, default=None,
                        help="folder the image names are relative to (default: <pairs dir>/images)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic highlights (default: 0)")
    parser.add_argument("--ransac-threshold", type=float, default=1.0,
                        help="essential-matrix threshold in px of the resized images (default: 1)")
    add_common_arguments(parser)


def main(args: argparse.Namespace) -> str:
    """Run from parsed arguments; returns the Markdown table (the CLI prints it)."""
    return run(args.pairs, args.images, **common_run_options(args))["table"]


__all__ = [
    "NUM_FIELDS",
    "PosePair",
    "add_arguments",
    "main",
    "parse_pairs_with_gt",
    "rotation_transform",
    "run",
    "score_pose",
]
