"""Synthetic homography benchmark: random warps of real photos, optionally with highlights.

For every image and every ``k < num_homographies``:

1. the image is read and shrunk to ``resize`` px on its long side;
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
:data:`DEFAULT_IMAGE_GLOBS`: the two LightGlue demo pairs, the 10 hloc Sacre-Coeur photos, the
13 SuperGlue phototourism photos, the 6 TUM frames and the first Oxford graffiti image (34).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from ..geometry import DEFAULT_HOMOGRAPHY_SAMPLING, sample_homography, warp_image
from . import metrics, report
from .methods import (
    DEFAULT_METHODS,
    METHOD_NAMES,
    FeatureCache,
    PairFeatures,
    PredictionCache,
    build_methods,
    config_fingerprint_check,
    expand_method_names,
    export_predictions,
    extract_features,
    load_image,
    specular_share,
    to_tensor,
    IMAGE_SUFFIXES,
)

logger = logging.getLogger(__name__)

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

#: the shared photos used when no image folder is given (globs relative to the data folder)
DEFAULT_IMAGE_GLOBS = (
    "01_lightglue_assets/*.[jJ][pP][gG]",
    "02_hloc_sacre_coeur/mapping/*.jpg",
    "04_superglue_phototourism_pairs/images/*.jpg",
    "05_tum_freiburg3_sequence/images/*.png",
    "06_oxford_graffiti_homography/img1.png",
)

SPECULAR_PLACEMENTS = ("independent", "camera_fixed")

#: the run settings that decide the features / pairs (a cache made with others is refused)
_CACHE_KEYS = ("benchmark", "images", "features", "extractor_conf", "num_homographies", "seed",
               "specular", "max_num_keypoints", "resize", "homography", "photometric", "lightglue_conf",
               "pairs_file", "pairs")


# ----------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------


def find_data_dir() -> Optional[Path]:
    """The shared photo folder: ``$SPECGLUE_DATA``, ``./../shared/data``, or the one next to
    the repository this file lives in; None if none exists."""
    candidates = []
    if os.environ.get("SPECGLUE_DATA"):
        candidates.append(Path(os.environ["SPECGLUE_DATA"]))
    candidates.append(Path.cwd().parent / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[4] / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def default_images(data_dir: Optional[PathLike] = None) -> List[Path]:
    """The default benchmark photos (see :data:`DEFAULT_IMAGE_GLOBS`), sorted.

    Raises:
        ValueError: no data folder was found or it holds none of the photos.
    """
    root = Path(data_dir) if data_dir is not None else find_data_dir()
    if root is None or not root.is_dir():
        raise ValueError("no image folder given and the shared data folder was not found; "
                         "pass images_dir (--images DIR) or set SPECGLUE_DATA")
    images = sorted({p for pattern in DEFAULT_IMAGE_GLOBS for p in root.glob(pattern)})
    if not images:
        raise ValueError(f"none of the default photos {DEFAULT_IMAGE_GLOBS} found under {root}")
    return images


def list_images(images_dir: PathLike) -> List[Path]:
    """Every image file (see ``IMAGE_SUFFIXES``) under ``images_dir``, recursively, sorted.

    Raises:
        ValueError: the folder does not exist or holds no image.
    """
    root = Path(images_dir)
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist")
    images = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"no image ({', '.join(IMAGE_SUFFIXES)}) found under {root}")
    return images


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


def _pair_name(path: Path, root: Optional[Path], k: int) -> Tuple[str, int]:
    rel = str(path.relative_to(root)) if root is not None and root in path.parents else path.name
    crc = zlib.crc32(rel.encode())
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)
    return f"{stem}-{crc:08x}-h{k}", crc


def add_specular(image0: torch.Tensor, image1: torch.Tensor, placement: str, seed: int
                 ) -> Tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    """Synthetic highlights on both ``[3, H, W]`` images; returns images and ``[H, W]`` masks."""
    from ..specular import synthesize_pair

    if placement not in SPECULAR_PLACEMENTS:
        raise ValueError(f"specular must be None or one of {SPECULAR_PLACEMENTS}, got {placement!r}")
    out = synthesize_pair(image0, image1, placement=placement, seed=int(seed))
    return out[0], out[1].cpu().numpy(), out[2], out[3].cpu().numpy()


# ----------------------------------------------------------------------------------------
# Shared by the homography benchmarks (synthetic and HPatches-style folders)
# ----------------------------------------------------------------------------------------


def make_extractor(features: str, max_num_keypoints: int, extractor_conf: Optional[Mapping[str, Any]],
                   device: torch.device):
    """The extractor of ``features``; images are resized by the benchmark, so its own
    ``resize`` is turned off."""
    from ..features import build_extractor

    conf = {"max_num_keypoints": int(max_num_keypoints), "resize": None, **dict(extractor_conf or {})}
    return build_extractor(features, **conf).eval().to(device)


def lazy_extractor(features: str, max_num_keypoints: int, extractor_conf: Optional[Mapping[str, Any]],
                   device: torch.device) -> Callable[[], Any]:
    """A getter that builds the extractor on first use (a fully cached run never builds it)."""
    built: Dict[str, Any] = {}

    def get():
        if "model" not in built:
            built["model"] = make_extractor(features, max_num_keypoints, extractor_conf, device)
        return built["model"]

    return get


def run_config(benchmark: str, images: Any, *, features: str, extractor_conf: Optional[Mapping[str, Any]],
               seed: int, specular: Optional[str], max_num_keypoints: int, resize: Optional[int],
               lightglue_conf: Optional[Mapping[str, Any]], methods: Optional[Sequence[str]],
               mnn_ratio: float, ransac_threshold: float, device: torch.device, out_dir: Path,
               **extra: Any) -> Dict[str, Any]:
    """The configuration every benchmark records (``results.json``, cache checks); ``extra``
    adds or overrides benchmark-specific entries."""
    return {
        "benchmark": benchmark,
        "images": images,
        "features": features,
        "extractor_conf": dict(extractor_conf or {}),
        "num_homographies": None,
        "seed": int(seed),
        "specular": specular,
        "max_num_keypoints": int(max_num_keypoints),
        "resize": resize,
        "homography": None,
        "photometric": None,
        "lightglue_conf": dict(lightglue_conf or {}),
        "methods": list(methods) if methods is not None else list(DEFAULT_METHODS),
        "mnn_ratio": float(mnn_ratio),
        "ransac_threshold": float(ransac_threshold),
        "device": str(device),
        "out_dir": str(out_dir),
        **extra,
    }


def export_pairs(builders: Sequence[Tuple[str, Callable[[], PairFeatures]]], cache: FeatureCache,
                 desc: str = "features") -> None:
    """Build (extract) and store every pair not yet in ``cache``."""
    have = set(cache.names())
    todo = [(n, b) for n, b in builders if n not in have]
    for name, build in tqdm(todo, desc=desc, leave=False):
        pair = build()
        if pair.name != name:
            raise RuntimeError(f"pair builder for {name!r} returned {pair.name!r}")
        cache.write(pair)


def score_homography(out_dir: PathLike, method_names: Optional[Sequence[str]] = None,
                     ransac_threshold: float = 3.0) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[Dict[str, Any]]]]:
    """Loop 2: score the cached predictions of a homography benchmark.

    Args:
        out_dir: folder with ``features.h5`` and ``predictions/<method>.h5``.
        method_names: methods to score, in table order; None: every cached method.
        ransac_threshold: MAGSAC++ inlier threshold in px.

    Returns:
        ``(summaries, records)``: per method the :func:`metrics.summarize_homography` dict
        and the per-pair records.
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
    n_layers = 9
    for name in tqdm(names, desc="score", leave=False):
        pair = cache.read(name)
        k0, k1 = pair.feats0["keypoints"].astype(np.float64), pair.feats1["keypoints"].astype(np.float64)
        H = pair.gt["H_0to1"]
        gt = metrics.gt_correspondences(k0, k1, H)
        for m in method_names:
            if name not in preds[m]:
                raise ValueError(f"pair {name!r} has no prediction of {m!r} in {out_dir / 'predictions'}")
            p = preds[m][name]
            errs = metrics.match_errors(k0, k1, p.matches, H)
            H_err = metrics.homography_errors(k0, k1, p.matches, H, pair.feats0["image_size"], ransac_threshold)
            records[m].append({
                "pair": name,
                "num_matches": p.num_matches,
                "num_keypoints0": len(k0),
                "num_keypoints1": len(k1),
                "precision": metrics.match_precision(errs, metrics.MATCH_THRESHOLDS),
                "recall": metrics.match_recall(k0, k1, p.matches, H, metrics.MATCH_THRESHOLDS, gt=gt),
                "precision_curve": metrics.match_precision(errs, metrics.CURVE_THRESHOLDS),
                "recall_curve": metrics.match_recall(k0, k1, p.matches, H, metrics.CURVE_THRESHOLDS, gt=gt),
                "H_error_ransac": H_err["ransac"],
                "H_error_dlt": H_err["dlt"],
                "ransac_inliers": H_err["ransac_inliers"],
                "time_s": p.time_s,
                "stop": p.stop,
                "specular_match_share": specular_share(pair, p.matches),
            })
    summaries = {m: metrics.summarize_homography(records[m], n_layers) for m in method_names}
    return summaries, records


def write_reports(out_dir: Path, config: Mapping[str, Any], methods: Sequence[Mapping[str, Any]],
                  summaries: Mapping[str, Mapping[str, Any]], records: Mapping[str, Sequence[Mapping[str, Any]]],
                  kind: str, title: str) -> Dict[str, Any]:
    """Write ``table.md``, ``results.json`` and the plots; return the results dict."""
    if kind == "homography":
        table = report.markdown_table(summaries, report.HOMOGRAPHY_COLUMNS)
        plots = [report.plot_homography(
            summaries,
            {m: {"ransac": [r["H_error_ransac"] for r in rs], "dlt": [r["H_error_dlt"] for r in rs]}
             for m, rs in records.items()},
            metrics.CURVE_THRESHOLDS, out_dir / "plots" / "homography.png", title)]
    else:
        table = report.markdown_table(summaries, report.POSE_COLUMNS)
        plots = [report.plot_pose({m: [r["pose_error"] for r in rs] for m, rs in records.items()},
                                  out_dir / "plots" / "pose.png", title)]
    stop_plot = report.plot_stop_histogram(summaries, out_dir / "plots" / "stop_layers.png")
    if stop_plot is not None:
        plots.append(stop_plot)
    (out_dir / "table.md").write_text(table)
    results = {
        "benchmark": kind,
        "title": title,
        "config": dict(config),
        "methods": list(methods),
        "thresholds": {
            "match_px": metrics.MATCH_THRESHOLDS,
            "homography_auc_px": metrics.HOMOGRAPHY_AUC_THRESHOLDS,
            "pose_auc_deg": metrics.POSE_AUC_THRESHOLDS,
            "curve_px": metrics.CURVE_THRESHOLDS,
        },
        "summary": summaries,
        "per_pair": records,
        "table": table,
        "files": {"json": out_dir / "results.json", "table": out_dir / "table.md", "plots": plots},
    }
    report.write_json(results, out_dir / "results.json")
    return results


def evaluate(builders: Sequence[Tuple[str, Callable[[], PairFeatures]]], config: Dict[str, Any],
             out_dir: Path, *, kind: str, title: str, overwrite: bool = False,
             device: Union[str, torch.device] = "cpu",
             scorer: Optional[Callable[..., Tuple[Dict[str, Any], Dict[str, Any]]]] = None) -> Dict[str, Any]:
    """Both loops for a list of ``(pair name, builder)``: export features and predictions of
    every method into ``out_dir``, then score and report. Shared by every benchmark."""
    logger.info("%s evaluation, config: %s", kind, config)
    expand_method_names(config["methods"], config["specular"] is not None)  # fail before extracting
    config_fingerprint_check(out_dir, config, _CACHE_KEYS, overwrite)
    cache = FeatureCache(out_dir / "features.h5")
    export_pairs(builders, cache)
    wanted = {n for n, _ in builders}
    extra = sorted(set(cache.names()) - wanted)
    if extra:
        raise ValueError(f"{cache.path} holds {len(extra)} pairs this run does not define "
                         f"(e.g. {extra[0]!r}); use another out_dir or overwrite=True")
    methods = build_methods(config["methods"], config["features"], has_masks=config["specular"] is not None,
                            device=device, mnn_ratio=config["mnn_ratio"],
                            lightglue_conf=config["lightglue_conf"])
    export_predictions(cache, methods, out_dir / "predictions")
    names = [m.name for m in methods]
    if scorer is None:
        summaries, records = score_homography(out_dir, names, config["ransac_threshold"])
    else:
        summaries, records = scorer(out_dir, names, config["ransac_threshold"])
    return write_reports(out_dir, config, [m.description() for m in methods], summaries, records, kind, title)


# ----------------------------------------------------------------------------------------
# The synthetic benchmark
# ----------------------------------------------------------------------------------------


def synthetic_pair_builders(images: Sequence[Path], *, root: Optional[Path], num_homographies: int, seed: int,
                            resize: Optional[int], specular: Optional[str],
                            homography: Mapping[str, Any], photometric: Mapping[str, Any],
                            get_extractor: Callable[[], Any]) -> List[Tuple[str, Callable[[], PairFeatures]]]:
    """One ``(name, builder)`` per image and homography; builders extract lazily."""
    memo: Dict[str, Any] = {}

    def source(path: Path):
        if memo.get("path") != path:
            image, _ = load_image(path, resize)
            memo.clear()
            memo.update(path=path, image=image)
        return memo["image"]

    def build(path: Path, k: int, name: str, crc: int) -> PairFeatures:
        image0 = source(path)
        h, w = image0.shape[:2]
        rng = np.random.default_rng([int(seed), crc, k])
        H = sample_homography(h, w, rng=rng, **homography)
        image1 = photometric_augment(warp_image(image0, H), rng, photometric)
        t0, t1 = to_tensor(image0), to_tensor(image1)
        mask0 = mask1 = None
        if specular is not None:
            t0, mask0, t1, mask1 = add_specular(t0, t1, specular, int(rng.integers(2**31 - 1)))
        extractor = get_extractor()
        if specular is None and "feats0" in memo:
            feats0 = memo["feats0"]  # the unchanged source image: extract once per image
        else:
            feats0 = extract_features(extractor, t0)
            if specular is None:
                memo["feats0"] = feats0
        feats1 = extract_features(extractor, t1)
        info = {"image": str(path), "k": k, "size": [w, h]}
        return PairFeatures(name, feats0, feats1, mask0, mask1, {"H_0to1": H}, info)

    builders = []
    for path in images:
        for k in range(int(num_homographies)):
            name, crc = _pair_name(path, root, k)
            builders.append((name, (lambda p=path, kk=k, n=name, c=crc: build(p, kk, n, c))))
    names = [n for n, _ in builders]
    if len(set(names)) != len(names):
        raise ValueError("two images give the same pair name; rename them or evaluate them separately")
    return builders


def default_out_dir(kind: str, features: str, max_num_keypoints: int, resize: Optional[int],
                    extra: str = "") -> Path:
    """hloc-style output folder whose name records the settings, under ``outputs/eval``."""
    return Path("outputs") / "eval" / f"{kind}-{features}-n{max_num_keypoints}-r{resize or 'orig'}{extra}"


def run(
    images_dir: Optional[PathLike] = None,
    *,
    features: str = "aliked",
    num_homographies: int = 2,
    seed: int = 0,
    methods: Optional[Sequence[str]] = None,
    specular: Optional[str] = None,
    max_num_keypoints: int = 1024,
    resize: Optional[int] = 640,
    out_dir: Optional[PathLike] = None,
    overwrite: bool = False,
    device: Union[str, torch.device] = "cpu",
    max_images: Optional[int] = None,
    extractor_conf: Optional[Mapping[str, Any]] = None,
    lightglue_conf: Optional[Mapping[str, Any]] = None,
    homography: Optional[Mapping[str, Any]] = None,
    photometric: Optional[Mapping[str, Any]] = None,
    mnn_ratio: float = 0.8,
    ransac_threshold: float = 3.0,
) -> Dict[str, Any]:
    """Run the synthetic homography benchmark (both loops) and write its reports.

    Args:
        images_dir: folder searched recursively for images; None: the shared photos
            (:func:`default_images`).
        features: extractor and LightGlue preset (``aliked``, ``disk``, ``sift``, ``superpoint``).
        num_homographies: warps per image (K).
        seed: base seed; the same seed gives the same pairs.
        methods: method names (:data:`specglue.eval.methods.METHOD_NAMES`); None: the default
            set ``specglue`` (every mode when highlights are synthesised), ``reference``,
            ``kornia`` and ``mnn``.
        specular: None (no highlights), ``"independent"`` or ``"camera_fixed"``.
        max_num_keypoints: keypoints per image.
        resize: long side (px) the photos are shrunk to; None keeps them.
        out_dir: output folder (caches, ``results.json``, ``table.md``, ``plots/``); None:
            ``outputs/eval/homography-<features>-n<kpts>-r<resize>-k<K>-s<seed>-<specular>``.
        overwrite: delete existing caches instead of resuming.
        max_images: evaluate only the first images (sorted), for quick runs.
        extractor_conf, lightglue_conf: extra settings of the extractor / every LightGlue.
        homography, photometric: overrides of :data:`DEFAULT_HOMOGRAPHY` /
            :data:`DEFAULT_PHOTOMETRIC`.
        mnn_ratio: ratio of the mutual-NN baseline.
        ransac_threshold: MAGSAC++ threshold (px).

    Returns:
        ``{"config", "methods", "summary": {method: metrics}, "per_pair", "table": markdown,
        "files"}`` (also written to ``<out_dir>/results.json``).
    """
    if specular is not None and specular not in SPECULAR_PLACEMENTS:
        raise ValueError(f"specular must be None or one of {SPECULAR_PLACEMENTS}, got {specular!r}")
    if int(num_homographies) < 1:
        raise ValueError(f"num_homographies must be >= 1, got {num_homographies}")
    hom = {**DEFAULT_HOMOGRAPHY, **dict(homography or {})}
    unknown = set(hom) - set(DEFAULT_HOMOGRAPHY_SAMPLING)
    if unknown:
        raise ValueError(f"unknown homography key(s) {sorted(unknown)}; known {sorted(DEFAULT_HOMOGRAPHY_SAMPLING)}")
    photo = {**DEFAULT_PHOTOMETRIC, **dict(photometric or {})}
    root = Path(images_dir) if images_dir is not None else find_data_dir()
    images = list_images(images_dir) if images_dir is not None else default_images(root)
    if max_images is not None:
        images = images[: int(max_images)]
    if out_dir is None:
        out_dir = default_out_dir("homography", features, max_num_keypoints, resize,
                                  f"-k{num_homographies}-s{seed}-{specular or 'nospec'}")
    out_dir = Path(out_dir)
    device = torch.device(device)
    config = run_config("homography", [str(p) for p in images], features=features,
                        extractor_conf=extractor_conf, seed=seed, specular=specular,
                        max_num_keypoints=max_num_keypoints, resize=resize, lightglue_conf=lightglue_conf,
                        methods=methods, mnn_ratio=mnn_ratio, ransac_threshold=ransac_threshold,
                        device=device, out_dir=out_dir, num_homographies=int(num_homographies),
                        homography=hom, photometric=photo)
    get_extractor = lazy_extractor(features, max_num_keypoints, extractor_conf, device)

    builders = synthetic_pair_builders(images, root=root, num_homographies=num_homographies, seed=seed,
                                       resize=resize, specular=specular, homography=hom,
                                       photometric=photo, get_extractor=get_extractor)
    title = (f"synthetic homographies: {len(images)} images x {num_homographies}, {features} "
             f"{max_num_keypoints} kpts, specular={specular}")
    return evaluate(builders, config, out_dir, kind="homography", title=title, overwrite=overwrite,
                    device=device)


def rescore(out_dir: PathLike, method_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Loop 2 only: score the caches of a finished run again and rewrite its reports."""
    import json

    out_dir = Path(out_dir)
    path = out_dir / "results.json"
    if not path.exists():
        raise ValueError(f"{path} not found: rescore needs a folder written by run()")
    previous = json.loads(path.read_text())
    config = previous["config"]
    kind = previous["benchmark"]
    names = method_names or [m["name"] for m in previous["methods"]]
    if kind == "homography":
        summaries, records = score_homography(out_dir, names, config["ransac_threshold"])
    else:
        from .pose import score_pose

        summaries, records = score_pose(out_dir, names, config["ransac_threshold"])
    methods = [m for m in previous["methods"] if m["name"] in names]
    return write_reports(out_dir, config, methods, summaries, records, kind, previous.get("title", ""))


# ----------------------------------------------------------------------------------------
# CLI hooks (the ``specglue eval homography`` subcommand calls these)
# ----------------------------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every eval subcommand."""
    parser.add_argument("--features", default="aliked", help="extractor + LightGlue preset (default: aliked)")
    parser.add_argument("--methods", nargs="+", default=None, choices=METHOD_NAMES, metavar="METHOD",
                        help=f"methods to compare (default: {' '.join(DEFAULT_METHODS)}); one of {', '.join(METHOD_NAMES)}")
    parser.add_argument("--specular", choices=("none",) + SPECULAR_PLACEMENTS, default="none",
                        help="synthetic highlights on both images (default: none)")
    parser.add_argument("--max-num-keypoints", type=int, default=1024, help="keypoints per image (default: 1024)")
    parser.add_argument("--resize", type=int, default=640, help="long side in px, 0 keeps the size (default: 640)")
    parser.add_argument("--out-dir", type=Path, default=None, help="output folder (default: outputs/eval/<settings>)")
    parser.add_argument("--overwrite", action="store_true", help="recompute instead of resuming from the caches")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--mnn-ratio", type=float, default=0.8, help="ratio test of the mnn baseline (default: 0.8)")


def common_run_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of every benchmark's ``run`` that :func:`add_common_arguments`
    (plus ``--seed`` and ``--ransac-threshold``) parsed."""
    return dict(
        features=args.features,
        methods=args.methods,
        specular=None if args.specular == "none" else args.specular,
        seed=args.seed,
        max_num_keypoints=args.max_num_keypoints,
        resize=args.resize or None,
        out_dir=args.out_dir,
        overwrite=args.overwrite,
        device=args.device,
        mnn_ratio=args.mnn_ratio,
        ransac_threshold=args.ransac_threshold,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``specglue eval homography``."""
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of images (recursive); default: the shared photos in ../shared/data")
    parser.add_argument("--num-homographies", "-k", type=int, default=2, help="warps per image (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--max-images", type=int, default=None, help="use only the first N images")
    parser.add_argument("--ransac-threshold", type=float, default=3.0, help="MAGSAC++ threshold in px (default: 3)")
    add_common_arguments(parser)


def main(args: argparse.Namespace) -> str:
    """Run from parsed arguments; returns the Markdown table (the CLI prints it)."""
    return run(args.images, num_homographies=args.num_homographies, max_images=args.max_images,
               **common_run_options(args))["table"]


__all__ = [
    "DEFAULT_HOMOGRAPHY",
    "DEFAULT_IMAGE_GLOBS",
    "DEFAULT_PHOTOMETRIC",
    "SPECULAR_PLACEMENTS",
    "add_arguments",
    "add_common_arguments",
    "common_run_options",
    "default_images",
    "evaluate",
    "find_data_dir",
    "list_images",
    "main",
    "photometric_augment",
    "rescore",
    "run",
    "score_homography",
    "synthetic_pair_builders",
]
