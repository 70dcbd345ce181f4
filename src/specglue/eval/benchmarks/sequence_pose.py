"""Relative pose along a video with known camera poses (``specglue eval sequence-pose``).

Ground truth is any COLMAP model (``sparse/`` with cameras and images) or the endoscopy
structure-from-motion layout (``motion.yaml``); see :mod:`specglue.geometry.poses`. The
sequence is the ground truth's frames in name order; pairs are ``(i, i + g)`` for each gap
``g`` of ``--gaps``. Every frame of the image folder between the first and the last frame of
the ground truth must have a pose (gaps count frames), and every frame of the ground truth must
be in the folder.

Each pair goes to the pipeline as a user's: the full-resolution frames are read, highlight
masks are detected on them (``--highlights detected``, :func:`specglue.specular.detect`, as
``match_pair(specular="auto")`` does), and the extractor shrinks each frame to ``--resize``
and detects inside the region of interest (``--roi``: ``none``, ``auto`` = the field of view
estimated once from frames of the sequence, or a mask file), giving keypoints in the stored
pixels; masks and region stay at the stored size. Pose: essential matrix with MAGSAC++
(``ransac_threshold`` px of the frames the network sees, 1 by default) and ``recoverPose``;
error ``max(rotation, translation-direction)`` in degrees (scale is unknown); AUC at 5/10/20
degrees per gap and over all pairs, the median error and the matches per pair.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ...features.roi import resolve_roi
from ...geometry.poses import SequencePoses, read_sequence_poses
from ...images import load_image, to_tensor
from ...specular import DEFAULT_METHOD, detect
from .. import metrics, report
from ..cache import PairFeatures, Prediction
from ..data import safe_name
from ..runner import Benchmark, PairImages, Plan, RunOptions
from . import pose

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: frame gaps of the pairs when none are given
DEFAULT_GAPS = (10, 20, 40)
#: highlight masks of the pairs: detected on the full-resolution frames, or none
HIGHLIGHTS = ("detected", "none")
#: frames (shrunk, with their masks) kept in memory while the pairs are built
KEPT_FRAMES = 64
#: gaps with their own table columns (others are in results.json only)
TABLE_GAPS = (1, 2, 5, 10, 20, 40, 80)


def sequence_frames(images_dir: Path, poses: SequencePoses) -> List[str]:
    """The frames of the sequence (the ground truth's, by name), checked against the folder.

    Raises:
        ValueError: a frame of the ground truth is not in ``images_dir``, or a frame of the
            folder inside the sequence has no pose.
    """
    names = poses.names
    missing = [n for n in names if not (images_dir / n).is_file()]
    if missing:
        raise ValueError(f"the ground truth {poses.source} names {len(missing)} frames that are not in "
                         f"{images_dir}, e.g. {missing[0]}")
    suffixes = {Path(n).suffix.lower() for n in names}
    inside = sorted(str(p.relative_to(images_dir)) for p in images_dir.rglob("*")
                    if p.suffix.lower() in suffixes and names[0] < str(p.relative_to(images_dir)) < names[-1])
    unposed = sorted(set(inside) - set(names))
    if unposed:
        raise ValueError(f"the ground truth {poses.source} has no pose for {len(unposed)} frames of "
                         f"{images_dir} inside the sequence, e.g. {unposed[0]} (gaps count frames)")
    return names


def sequence_pairs(num_frames: int, gaps: Sequence[int]) -> List[Tuple[int, int, int]]:
    """``(i, i + g, g)`` for every gap ``g`` and frame ``i`` with ``i + g < num_frames``.

    Raises:
        ValueError: a gap under 1, or no pair at all.
    """
    if any(int(g) < 1 for g in gaps):
        raise ValueError(f"gaps must be >= 1 frame, got {list(gaps)}")
    pairs = [(i, i + int(g), int(g)) for g in gaps for i in range(num_frames - int(g))]
    too_long = [int(g) for g in gaps if int(g) >= num_frames]
    if too_long:
        logger.warning("gaps %s are not shorter than the sequence (%d frames): no pair", too_long, num_frames)
    if not pairs:
        raise ValueError(f"no pair: every gap {list(gaps)} is at least the sequence length ({num_frames} frames)")
    return pairs


COLUMNS: Sequence[report.Column] = (
    *((f"AUC@{t:g}°", f"auc@{t:g}deg", "pct") for t in metrics.POSE_AUC_THRESHOLDS),
    ("median error °", "median_pose_error", "float1"),
    *((f"AUC@5/10/20° gap {g}", tuple(f"auc@{t:g}deg_gap{g}" for t in metrics.POSE_AUC_THRESHOLDS), "pct")
      for g in TABLE_GAPS),
    report.MATCHES_COLUMN,
    ("#keypoints", "num_keypoints", "int"),
    ("inlier ratio", "inlier_ratio", "pct"),
    ("% matches on highlights", "specular_match_share", "pct"),
    *report.TIMING_COLUMNS,
)


def score_pair(pair: PairFeatures, pred: Prediction, config: Mapping[str, Any]) -> Dict[str, Any]:
    """The relative-pose error of :func:`specglue.eval.benchmarks.pose.score_pair`, with the gap."""
    return {"gap": int(pair.info["gap"]), **pose.score_pair(pair, pred, config)}


def summarize(records: Sequence[Mapping[str, Any]], n_layers: int) -> Dict[str, Any]:
    """:func:`specglue.eval.metrics.summarize_pose` over all pairs, the median error, and the
    AUCs of each gap (``auc@10deg_gap20`` ...)."""
    out = metrics.summarize_pose(records, n_layers)
    errors = np.asarray([r["pose_error"] for r in records], dtype=np.float64)
    out["median_pose_error"] = float(np.median(errors)) if len(errors) else float("nan")
    gaps = sorted({int(r["gap"]) for r in records})
    out["gaps"] = gaps
    for g in gaps:
        aucs = metrics.error_auc([r["pose_error"] for r in records if r["gap"] == g], metrics.POSE_AUC_THRESHOLDS)
        for t, a in zip(metrics.POSE_AUC_THRESHOLDS, aucs):
            out[f"auc@{t:g}deg_gap{g}"] = a
        out[f"num_pairs_gap{g}"] = sum(1 for r in records if r["gap"] == g)
    return out


def frame_range(frames: Sequence[str], first_last: Optional[Sequence[str]]) -> List[str]:
    """The frames from ``first_last[0]`` to ``first_last[1]`` (names, both included), or all.

    Raises:
        ValueError: a name that is not a frame of the sequence, or the last before the first.
    """
    if not first_last:
        return list(frames)
    if len(first_last) != 2:
        raise ValueError(f"frames must be (first, last) frame names, got {list(first_last)}")
    first, last = (str(n) for n in first_last)
    for name in (first, last):
        if name not in frames:
            raise ValueError(f"frames: {name!r} is not a frame of the sequence ({frames[0]} ... {frames[-1]})")
    i, j = frames.index(first), frames.index(last)
    if j < i:
        raise ValueError(f"frames: the last frame {last!r} comes before the first {first!r}")
    return list(frames[i:j + 1])


def prepare(options: RunOptions, images_dir: PathLike, gt: PathLike, gaps: Sequence[int] = DEFAULT_GAPS,
            roi: str = "none", highlights: str = "detected", detector: str = DEFAULT_METHOD,
            frames: Optional[Sequence[str]] = None) -> Plan:
    """The pairs ``(i, i + g)`` of a sequence with known poses.

    Args:
        images_dir: folder of the frames (names as in the ground truth).
        gt: a COLMAP model folder or an endoscopy structure-from-motion folder.
        gaps: frame gaps of the pairs.
        roi: ``"none"``, ``"auto"`` (the field of view, estimated once from the sequence) or a
            mask image file (non-zero inside, the frames' size).
        highlights: ``"detected"`` (masks of ``detector`` on the full-resolution frames) or ``"none"``.
        detector: the highlight detector method.
        frames: ``(first, last)`` frame names: only the frames between them (both included),
            e.g. to keep frames a model was trained on out of its evaluation.

    Raises:
        ValueError: bad ground truth, frames, gaps, roi or highlights (nothing is written).
    """
    if highlights not in HIGHLIGHTS:
        raise ValueError(f"highlights must be one of {HIGHLIGHTS}, got {highlights!r}")
    images_dir, gt = Path(images_dir), Path(gt)
    if not images_dir.is_dir():
        raise ValueError(f"image folder {images_dir} does not exist")
    poses = read_sequence_poses(gt)
    every_frame = sequence_frames(images_dir, poses)
    frames = frame_range(every_frame, frames)
    restricted = len(frames) < len(every_frame)
    pairs = sequence_pairs(len(frames), gaps)
    first = load_image(images_dir / frames[0], frames[0])
    # the region is resolved now, so a bad mask file fails before anything is written
    region = resolve_roi(roi, [images_dir / f for f in frames], first.shape[:2])

    @functools.lru_cache(maxsize=KEPT_FRAMES)
    def frame(index: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """The frame as stored (uint8 [H, W, 3]: a quarter of its tensor's memory) and its
        highlight mask."""
        name = frames[index]
        rgb = load_image(images_dir / name, name)
        if rgb.shape[:2] != first.shape[:2]:
            raise ValueError(f"{images_dir / name} is {rgb.shape[1]}x{rgb.shape[0]} px but the sequence's frames "
                             f"are {first.shape[1]}x{first.shape[0]}")
        mask = detect(rgb, method=detector) if highlights == "detected" else None
        return rgb, mask

    px_scale = pose.network_px_scale(options, first.shape[:2])

    def build(i: int, j: int, gap: int) -> PairImages:
        image0, mask0 = frame(i)
        image1, mask1 = frame(j)
        n0, n1 = frames[i], frames[j]
        gt_pair = {"K0": poses.K[n0], "K1": poses.K[n1], "T_0to1": poses.relative_pose(n0, n1),
                   "A0": np.eye(3), "A1": np.eye(3), "px_scale": px_scale}
        info = {"image0": n0, "image1": n1, "gap": gap}
        return PairImages(_pair_name(n0, n1), to_tensor(image0), to_tensor(image1), gt_pair, info, mask0, mask1,
                          region, region, key0=n0, key1=n1)

    builders = [(_pair_name(frames[i], frames[j]), (lambda i=i, j=j, g=g: build(i, j, g))) for i, j, g in pairs]
    settings = {"images_dir": str(images_dir.resolve()), "gt": str(gt.resolve()), "gaps": [int(g) for g in gaps],
                "roi": roi if roi in ("none", "auto") else str(Path(roi).resolve()), "highlights": highlights,
                "detector": detector}
    span = ""
    if restricted:  # recorded only then: runs over every frame keep their fingerprint
        settings["frames"] = [frames[0], frames[-1]]
        span = f"-frames_{safe_name(Path(frames[0]).stem)}_{safe_name(Path(frames[-1]).stem)}"
    roi_name = roi if roi in ("none", "auto") else "file"
    title = (f"{images_dir.name} {frames[0]}–{frames[-1]}: {len(pairs)} pairs "
             f"(gaps {', '.join(map(str, gaps))}), {options.features} "
             f"{options.max_num_keypoints} kpts, roi={roi_name}, highlights={highlights}")
    return Plan(builders, settings, title, f"{safe_name(images_dir.name)}{span}-roi_{roi_name}-{highlights}",
                has_masks=highlights != "none")


def _pair_name(name0: str, name1: str) -> str:
    return f"{safe_name(Path(name0).stem)}--{safe_name(Path(name1).stem)}"


BENCHMARK = Benchmark(name="sequence-pose",
                      help="relative pose between frames of a sequence with known poses (COLMAP model or "
                           "endoscopy SfM): AUC at 5/10/20 degrees per frame gap",
                      prepare=prepare, score_pair=score_pair, summarize=summarize,
                      columns=COLUMNS, plot=pose.plot, ransac_threshold=1.0)

__all__ = ["BENCHMARK", "COLUMNS", "DEFAULT_GAPS", "HIGHLIGHTS", "frame_range", "prepare", "score_pair",
           "sequence_frames", "sequence_pairs", "summarize"]
