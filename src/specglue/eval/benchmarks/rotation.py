"""In-plane rotation benchmark: the shared photos turned by angles in bins of 30 degrees.

For every image and every bin ``[lo, lo + 30)`` of :data:`ROTATION_BINS` (0-30, ..., 150-180
degrees) and every ``k < per_bin``: an angle is drawn uniformly in the bin with a random
sign; image 1 is image 0 turned by it about its centre onto a canvas that holds the whole
turned frame (:func:`specglue.geometry.rotation_homography`, black corners), then the
photometric changes of the homography benchmark. Scored like the homography benchmark;
the table gives, per bin, the MAGSAC++ corner-error AUC at 3 px and the mean number of
matches, and the mean of the bins' AUC (every number per bin and overall is in ``results.json``).

The official LightGlue is known to fail beyond about 60 degrees (its positional encoding is
not rotation invariant); this table is the baseline rotation-aware training is judged on,
with the ``reference-rot4`` workaround (best of 4 rotations of image 1) beside it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ...geometry import rotation_homography, warp_image
from .. import metrics, report
from ..data import image_key
from ..runner import Benchmark, PairImages, Plan, RunOptions
from . import homography

PathLike = Union[str, Path]

#: the angle bins in degrees, ``[lo, hi)``
ROTATION_BINS = tuple((lo, lo + 30) for lo in range(0, 180, 30))


def bin_label(lo: int, hi: int) -> str:
    return f"{lo}-{hi}deg"


def prepare(options: RunOptions, images_dir: Optional[PathLike] = None, per_bin: int = 1,
            max_images: Optional[int] = None) -> Plan:
    """The pairs: ``per_bin`` rotations of every photo in every angle bin.

    Args:
        images_dir: folder searched recursively for images; None: the shared photos.
        per_bin: rotations per image and bin.
        max_images: only the first images (sorted), for quick runs.
    """
    if int(per_bin) < 1:
        raise ValueError(f"per_bin must be >= 1, got {per_bin}")
    root, images = homography.source_images(images_dir, max_images)
    photometric = dict(homography.DEFAULT_PHOTOMETRIC)
    source = functools.lru_cache(maxsize=1)(lambda path: homography.read_source(path, options.resize))

    def build(path: Path, b: int, k: int, name: str, crc: int) -> PairImages:
        image0 = source(path)
        h, w = image0.shape[:2]
        rng = np.random.default_rng([int(options.seed), crc, b, k])
        lo, hi = ROTATION_BINS[b]
        angle = float(rng.uniform(lo, hi)) * (1.0 if rng.random() < 0.5 else -1.0)
        H, size = rotation_homography(w, h, angle)
        info = {"image": str(path), "bin": b, "angle_deg": angle, "size": [w, h]}
        return homography.warped_pair(name, path, image0, warp_image(image0, H, size), H, rng, options,
                                      photometric, info)

    builders = []
    for path in images:
        stem, crc = image_key(path, root)
        for b in range(len(ROTATION_BINS)):
            for k in range(int(per_bin)):
                name = f"{stem}-b{b}-r{k}"
                builders.append((name, lambda p=path, bb=b, kk=k, n=name, c=crc: build(p, bb, kk, n, c)))
    settings = {"images": [str(p) for p in images], "per_bin": int(per_bin), "bins": ROTATION_BINS,
                "photometric": photometric}
    title = (f"in-plane rotations: {len(images)} images x {len(ROTATION_BINS)} bins x {per_bin}, "
             f"{options.features} {options.max_num_keypoints} kpts, specular={options.specular}")
    return Plan(builders, settings, title, f"b{per_bin}-s{options.seed}-{options.specular or 'nospec'}")


def score_pair(pair, pred, config: Mapping[str, Any]) -> Dict[str, Any]:
    """The homography record plus the pair's angle bin."""
    return {**homography.score_pair(pair, pred, config), "bin": int(pair.info["bin"]),
            "angle_deg": float(pair.info["angle_deg"])}


def summarize(records: Sequence[Mapping[str, Any]], n_layers: int) -> Dict[str, Any]:
    """The homography summary over all pairs, and per bin ``<key>[<lo>-<hi>deg]`` for the
    RANSAC AUCs, precision at 3 px and matches; ``auc_ransac@3px[bin mean]`` is the mean of
    the bins' AUC@3px (the table's summary column; nan when a bin is empty)."""
    out = metrics.summarize_homography(records, n_layers)
    for b, (lo, hi) in enumerate(ROTATION_BINS):
        in_bin = [r for r in records if r["bin"] == b]
        part = metrics.summarize_homography(in_bin, n_layers) if in_bin else {}
        for key in ("auc_ransac@1px", "auc_ransac@3px", "auc_ransac@5px", "prec@3px", "num_matches"):
            out[f"{key}[{bin_label(lo, hi)}]"] = part.get(key, float("nan"))
    out["auc_ransac@3px[bin mean]"] = float(np.mean([out[f"auc_ransac@3px[{bin_label(lo, hi)}]"]
                                                     for lo, hi in ROTATION_BINS]))
    return out


#: per bin: RANSAC AUC@3px / mean matches
COLUMNS: Sequence[report.Column] = tuple(
    (f"{lo}–{hi}°", (f"auc_ransac@3px[{bin_label(lo, hi)}]", f"num_matches[{bin_label(lo, hi)}]"), ("pct", "int"))
    for lo, hi in ROTATION_BINS
) + (("mean AUC@3px", "auc_ransac@3px[bin mean]", "pct"),)


def plot(summaries: Mapping[str, Any], records: Mapping[str, List[Dict[str, Any]]], plots_dir: Path,
         title: str) -> List[Path]:
    """AUC@3px and matches against the rotation bin (``rotation.png``)."""
    labels = [f"{lo}–{hi}" for lo, hi in ROTATION_BINS]
    curves = {m: {"RANSAC AUC@3px": [s[f"auc_ransac@3px[{bin_label(lo, hi)}]"] for lo, hi in ROTATION_BINS],
                  "matches": [s[f"num_matches[{bin_label(lo, hi)}]"] for lo, hi in ROTATION_BINS]}
              for m, s in summaries.items()}
    return [report.plot_by_bin(curves, labels, "rotation [deg]", plots_dir / "rotation.png", title)]


BENCHMARK = Benchmark(name="rotation",
                      help="in-plane rotations of your photos in bins of 30 degrees (0-30 ... 150-180)",
                      prepare=prepare, score_pair=score_pair,
                      summarize=summarize, columns=COLUMNS, plot=plot)

__all__ = ["BENCHMARK", "COLUMNS", "ROTATION_BINS", "prepare", "summarize"]
