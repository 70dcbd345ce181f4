"""Synthetic homography benchmark: random warps of real photos, optionally with highlights.

For every image and every ``k < num_homographies``:

1. the image is read and shrunk to ``resize`` px on its long side
   (:func:`specglue.images.resize_max`): the pair is made at the benchmark's size, so the
   extractor, which shrinks only larger images, takes both views as they are;
2. a homography ``H`` is drawn with :func:`specglue.geometry.sample_homography` using
   :data:`DEFAULT_HOMOGRAPHY` (rotation within +-25 deg, log-uniform scale in [0.8, 1.25],
   projective terms within +-0.2, shift within +-10 %, at least 70 % overlap);
3. image 1 is the warp of image 0 (black outside the frame) followed by photometric changes
   drawn from :data:`DEFAULT_PHOTOMETRIC` (brightness, contrast, gamma, Gaussian noise);
4. with ``specular="independent"`` or ``"camera_fixed"``, synthetic highlights are added to
   both images by :func:`specglue.specular.synthesize_pair` and their exact masks are kept;
5. features are extracted from both images (one extractor for every method).

All randomness of a pair comes from ``numpy.random.default_rng([seed, crc32(image path), k])``
(highlights from a torch generator seeded by it), so a run is repeatable and adding an image
does not change the pairs of the others.

Metrics (:mod:`specglue.eval.metrics`): match precision and recall at 1/3/5 px, homography
corner-error AUC at 1/3/5 px after MAGSAC++ (3 px threshold) and after a DLT on all matches,
matches and milliseconds per pair, and the early-stopping layer histogram.

Default images (when ``images_dir`` is None): from the shared data folder (``$SPECGLUE_DATA``,
else ``../shared/data`` from the working directory, else next to the repository), see
:data:`specglue.eval.data.DEFAULT_IMAGE_GLOBS` (34 photos).

The scorer, summary, columns and plots here also serve the other homography benchmarks
(``hpatches``, ``rotation``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ...geometry import DEFAULT_HOMOGRAPHY_SAMPLING, sample_homography, warp_image, warp_points
from ...images import list_images, load_image, resize_max, to_tensor
from .. import metrics, report
from ..cache import PairFeatures, Prediction
from ..data import add_specular, default_images, find_data_dir, image_key
from ..runner import Benchmark, PairImages, Plan, RunOptions

PathLike = Union[str, Path]

#: homography sampling ranges of the benchmark (keys of ``sample_homography``)
DEFAULT_HOMOGRAPHY: Dict[str, Any] = {
    "max_angle_deg": 25.0,  # in-plane rotation uniform in [-25, 25] degrees
    "scale_range": (0.8, 1.25),  # isotropic scale, log-uniform
    "perspective": 0.2,  # projective terms in [-0.2, 0.2] / (half the long side)
    "translation": 0.1,  # shift up to 10 % of width / height
    "min_overlap": 0.7,  # accept a warp only if >= 70 % of both frames overlap
}

#: photometric changes applied to the warped image (image 1), each drawn per pair
DEFAULT_PHOTOMETRIC: Dict[str, Any] = {
    "brightness": 0.1,  # additive offset uniform in [-0.1, 0.1] (image in [0, 1]); 0 disables
    "contrast": (0.8, 1.25),  # gain about the mean, log-uniform; (1, 1) disables
    "gamma": (0.8, 1.25),  # out = in ** gamma, log-uniform; (1, 1) disables
    "noise_std": (0.0, 0.02),  # Gaussian noise sigma uniform in this range; (0, 0) disables
}

#: the Markdown table: (header, summary key(s), format)
COLUMNS: Sequence[report.Column] = (
    *((f"P@{t:g}px", f"prec@{t:g}px", "pct") for t in metrics.MATCH_THRESHOLDS),
    *((f"R@{t:g}px", f"recall@{t:g}px", "pct") for t in metrics.MATCH_THRESHOLDS),
    *((f"{est.upper()} AUC@{'/'.join(f'{t:g}' for t in metrics.HOMOGRAPHY_AUC_THRESHOLDS)}px",
       tuple(f"auc_{est}@{t:g}px" for t in metrics.HOMOGRAPHY_AUC_THRESHOLDS), "pct") for est in ("ransac", "dlt")),
    report.MATCHES_COLUMN,
    ("% on glare", "specular_match_share", "pct"),
    *report.TIMING_COLUMNS,
)


def photometric_augment(image: np.ndarray, rng: np.random.Generator,
                        conf: Mapping[str, Any] = DEFAULT_PHOTOMETRIC) -> np.ndarray:
    """Brightness, contrast, gamma and noise (in that order) on ``[H, W, 3]`` float in [0, 1].

    Returns:
        The changed image, clipped to [0, 1], float32.
    """
    unknown = set(conf) - set(DEFAULT_PHOTOMETRIC)
    if unknown:
        raise ValueError(f"unknown photometric key(s) {sorted(unknown)}; known {sorted(DEFAULT_PHOTOMETRIC)}")
    conf = {**DEFAULT_PHOTOMETRIC, **conf}

    def log_uniform(lo: float, hi: float) -> float:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)

    out = image.astype(np.float32)
    b = float(conf["brightness"])
    out = out + (rng.uniform(-b, b) if b > 0 else 0.0)
    gain = log_uniform(*conf["contrast"])
    out = (out - out.mean()) * gain + out.mean()
    out = np.clip(out, 0.0, 1.0) ** log_uniform(*conf["gamma"])
    lo, hi = conf["noise_std"]
    sigma = rng.uniform(lo, hi) if hi > lo else lo
    if sigma > 0:
        out = out + rng.normal(0.0, sigma, size=out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def read_source(path: Path, resize: Optional[int]) -> np.ndarray:
    """A photo as float32 ``[H, W, 3]`` in [0, 1], shrunk to ``resize`` px on the long side."""
    image, _ = resize_max(load_image(path, "image"), resize)
    return image.astype(np.float32) / 255.0


def warped_pair(name: str, path: Path, image0: np.ndarray, warped: np.ndarray, H: np.ndarray,
                rng: np.random.Generator, options: RunOptions, photometric: Mapping[str, Any],
                info: Dict[str, Any]) -> PairImages:
    """The pair of a photo and its warp: photometric changes on the warp, then the optional
    synthetic highlights (seeded by ``rng``). Without highlights image 0 is the photo itself,
    shared by all its pairs (``key0``), so it is extracted once."""
    image1 = photometric_augment(warped, rng, photometric)
    t0, mask0, t1, mask1 = add_specular(to_tensor(image0), to_tensor(image1), options.specular,
                                        int(rng.integers(2**31 - 1)) if options.specular else 0)
    return PairImages(name, t0, t1, {"H_0to1": H}, info, mask0, mask1,
                      key0=None if options.specular else str(path))


def source_images(images_dir: Optional[PathLike], max_images: Optional[int]) -> Tuple[Optional[Path], List[Path]]:
    """``(root, images)``: the photos of ``images_dir`` (recursive) or the shared ones."""
    root = Path(images_dir) if images_dir is not None else find_data_dir()
    images = list_images(images_dir) if images_dir is not None else default_images(root)
    return root, images[: int(max_images)] if max_images is not None else images


def prepare(options: RunOptions, images_dir: Optional[PathLike] = None, num_homographies: int = 2,
            max_images: Optional[int] = None, homography: Optional[Mapping[str, Any]] = None,
            photometric: Optional[Mapping[str, Any]] = None) -> Plan:
    """The pairs: ``num_homographies`` random warps of every photo.

    Args:
        images_dir: folder searched recursively for images; None: the shared photos.
        num_homographies: warps per image (K).
        max_images: only the first images (sorted), for quick runs.
        homography, photometric: overrides of :data:`DEFAULT_HOMOGRAPHY` /
            :data:`DEFAULT_PHOTOMETRIC`.
    """
    if int(num_homographies) < 1:
        raise ValueError(f"num_homographies must be >= 1, got {num_homographies}")
    hom = {**DEFAULT_HOMOGRAPHY, **dict(homography or {})}
    unknown = set(hom) - set(DEFAULT_HOMOGRAPHY_SAMPLING)
    if unknown:
        raise ValueError(f"unknown homography key(s) {sorted(unknown)}; known {sorted(DEFAULT_HOMOGRAPHY_SAMPLING)}")
    photo = {**DEFAULT_PHOTOMETRIC, **dict(photometric or {})}
    root, images = source_images(images_dir, max_images)
    # the pairs of a photo come one after another: keep only the last photo read
    source = functools.lru_cache(maxsize=1)(lambda path: read_source(path, options.resize))

    def build(path: Path, k: int, name: str, crc: int) -> PairImages:
        image0 = source(path)
        h, w = image0.shape[:2]
        rng = np.random.default_rng([int(options.seed), crc, k])
        H = sample_homography(h, w, rng=rng, **hom)
        return warped_pair(name, path, image0, warp_image(image0, H), H, rng, options, photo,
                           {"image": str(path), "k": k, "size": [w, h]})

    builders = []
    for path in images:
        stem, crc = image_key(path, root)
        for k in range(int(num_homographies)):
            name = f"{stem}-h{k}"
            builders.append((name, lambda p=path, kk=k, n=name, c=crc: build(p, kk, n, c)))
    if len({n for n, _ in builders}) != len(builders):
        raise ValueError("two images give the same pair name; rename them or evaluate them separately")
    settings = {"images": [str(p) for p in images], "num_homographies": int(num_homographies),
                "homography": hom, "photometric": photo}
    title = (f"synthetic homographies: {len(images)} images x {num_homographies}, {options.features} "
             f"{options.max_num_keypoints} kpts, specular={options.specular}")
    return Plan(builders, settings, title, f"k{num_homographies}-s{options.seed}-{options.specular or 'nospec'}")


def score_pair(pair: PairFeatures, pred: Prediction, config: Mapping[str, Any]) -> Dict[str, Any]:
    """Precision and recall at 1/3/5 px (and curves), corner errors after MAGSAC++ and DLT, in
    the pixels of ``H_0to1`` (keypoints mapped there by ``S0``, ``S1`` when the pair has them)."""
    S0, S1 = pair.gt.get("S0", np.eye(3)), pair.gt.get("S1", np.eye(3))
    k0 = warp_points(pair.image0.keypoints.astype(np.float64), S0)
    k1 = warp_points(pair.keypoints1(pred.view), S1)
    size0 = np.asarray(pair.image0.image_size, dtype=np.float64) * np.diag(S0)[:2]
    H = pair.gt["H_0to1"]
    if ("gt", pred.view) not in pair.derived:  # the same for every method matching this view
        pair.derived[("gt", pred.view)] = metrics.gt_correspondences(k0, k1, H)
    gt = pair.derived[("gt", pred.view)]
    errs = metrics.match_errors(k0, k1, pred.matches, H)
    H_err = metrics.homography_errors(k0, k1, pred.matches, H, size0, config["ransac_threshold"])
    return {
        "precision": metrics.match_precision(errs, metrics.MATCH_THRESHOLDS),
        "recall": metrics.match_recall(k0, k1, pred.matches, H, metrics.MATCH_THRESHOLDS, gt=gt),
        "precision_curve": metrics.match_precision(errs, metrics.CURVE_THRESHOLDS),
        "recall_curve": metrics.match_recall(k0, k1, pred.matches, H, metrics.CURVE_THRESHOLDS, gt=gt),
        "H_error_ransac": H_err["ransac"],
        "H_error_dlt": H_err["dlt"],
        "ransac_inliers": H_err["ransac_inliers"],
    }


def plot(summaries: Mapping[str, Any], records: Mapping[str, List[Dict[str, Any]]], plots_dir: Path,
         title: str) -> List[Path]:
    """Precision / recall curves and cumulative corner errors (``homography.png``)."""
    errors = {m: {"ransac": [r["H_error_ransac"] for r in rs], "dlt": [r["H_error_dlt"] for r in rs]}
              for m, rs in records.items()}
    return [report.plot_homography(summaries, errors, metrics.CURVE_THRESHOLDS, plots_dir / "homography.png", title)]


BENCHMARK = Benchmark(name="homography",
                      help="random homographies of your photos (default: the photos in ../shared/data)",
                      prepare=prepare, score_pair=score_pair,
                      summarize=metrics.summarize_homography, columns=COLUMNS, plot=plot)

__all__ = ["BENCHMARK", "COLUMNS", "DEFAULT_HOMOGRAPHY", "DEFAULT_PHOTOMETRIC", "photometric_augment",
           "prepare", "read_source", "score_pair", "source_images", "warped_pair"]
