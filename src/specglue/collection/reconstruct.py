"""The whole chain in one call: images or a video to a COLMAP sparse model, a summary, a picture.

``reconstruct(SOURCE, OUT_DIR)`` runs, each stage resumable and each also available alone::

    extract     SOURCE -> OUT_DIR/features.h5            (specglue extract)
    pairs       -> OUT_DIR/pairs.txt                     (specglue pairs)
    match       -> OUT_DIR/matches.h5                    (specglue match-pairs)
    database    -> OUT_DIR/database.db, verified         (specglue colmap --verify)
    mapping     -> OUT_DIR/sparse/                       (pycolmap incremental mapping, a preset
                                                          of :data:`MAPPING_PRESETS`)
    report      -> OUT_DIR/summary.json, reconstruction.png

A video's frames are also saved to ``OUT_DIR/images/`` (COLMAP colours points from them).
Pairs: ``auto`` matches every pair of a collection of up to :data:`EXHAUSTIVE_UP_TO` images
and a sequential window (``window`` frames + quadratic offsets) beyond, as video needs.
A rerun reuses the features and matches already computed (with the same settings).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

from .colmap import map_database, plot_reconstruction, summarize, write_database
from .extract import ExtractionSettings, extract_features
from .match import MatchSettings, match_pairs
from .pairs import exhaustive_pairs, image_names, sequential_pairs, write_pairs
from .sources import ImageSource, write_frames

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
PAIR_MODES = ("auto", "exhaustive", "sequential")
#: ``pairs="auto"``: exhaustive up to this many images, sequential beyond
EXHAUSTIVE_UP_TO = 40
#: named settings of incremental mapping: ``attempts`` (mapping runs with random seeds 0, 1,
#: ...; the model with the most 2D-3D observations is kept) and ``options`` (fields of
#: ``pycolmap.IncrementalPipelineOptions``). ``photos``: COLMAP's defaults, one run.
#: ``video``: for the small baselines of consecutive frames (endoscopy: the camera moves
#: millimetres between frames), COLMAP's triangulation-angle limits lowered -- with the
#: defaults (16 degrees to start, 1.5 to keep a point) the 12 laparoscopic frames give no
#: initial pair at all -- and three runs, because with such baselines the initial pair
#: decides everything: seed 0 gave 7 frames and 5 points, seed 1 all 12 frames and 187 points.
MAPPING_PRESETS: Dict[str, Dict[str, Any]] = {
    "photos": {"attempts": 1, "options": {}},
    "video": {
        "attempts": 3,
        "options": {
            "mapper": {"init_min_tri_angle": 1.0, "init_min_num_inliers": 30, "filter_min_tri_angle": 0.5,
                       "ba_local_min_tri_angle": 2.0},
            "triangulation": {"min_angle": 0.5},
            "min_model_size": 3,
        },
    },
}
#: ``mapping="auto"``: the preset of each kind of source
AUTO_MAPPING = {"video": "video", "folder": "photos"}


def reconstruct(
    source: PathLike,
    out_dir: PathLike,
    extraction: Optional[ExtractionSettings] = None,
    matching: Optional[MatchSettings] = None,
    masks_dir: Optional[PathLike] = None,
    every: int = 1,
    pairs: str = "auto",
    window: int = 10,
    camera_model: str = "SIMPLE_RADIAL",
    camera_mode: str = "auto",
    mapping: str = "auto",
    engine: Any = None,
    progress: bool = True,
) -> Dict[str, Any]:
    """Reconstruct ``source`` (an image folder or a video) into ``out_dir`` (see the module doc).

    Args:
        extraction / matching: the settings of the two learned stages (defaults: ALIKED
            2048 keypoints with detected highlight masks; official weights, hard masks).
        masks_dir: the masks of ``extraction.specular == "masks"``.
        every: keep one video frame in ``every``.
        pairs / window: which pairs to match (:data:`PAIR_MODES`) and the sequential window.
        camera_model / camera_mode: see :func:`specglue.collection.colmap.write_database`.
        mapping: a :data:`MAPPING_PRESETS` name, or ``"auto"`` (:data:`AUTO_MAPPING`: ``video``
            for a video file, ``photos`` for a folder; a folder of video frames wants ``video``).
        engine: the engine of extraction and matching (default: this process).

    Returns:
        the summary also written to ``summary.json``: the model's numbers
        (:func:`~specglue.collection.colmap.summarize`), the stages' counts and seconds,
        the settings and the output paths.

    Raises:
        ValueError: bad input at any stage (missing source, unreadable video, ...).
        RuntimeError: mapping registered fewer than two images.
    """
    if pairs not in PAIR_MODES:
        raise ValueError(f"pairs must be one of {PAIR_MODES}, got {pairs!r}")
    if mapping != "auto" and mapping not in MAPPING_PRESETS:
        raise ValueError(f"mapping must be 'auto' or one of {sorted(MAPPING_PRESETS)}, got {mapping!r}")
    out_dir = Path(out_dir)
    extraction = extraction or ExtractionSettings()
    matching = matching or MatchSettings()
    image_source = ImageSource(source, every=every)
    seconds: Dict[str, float] = {}
    start = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal start
        seconds[stage] = round(time.monotonic() - start, 2)
        start = time.monotonic()
        logger.info("reconstruct: %s done in %.1f s", stage, seconds[stage])

    features = out_dir / "features.h5"
    extracted = extract_features(source, features, extraction, masks_dir=masks_dir, every=every,
                                 engine=engine, progress=progress)
    if image_source.kind == "video":
        image_dir = out_dir / "images"
        write_frames(image_source, image_dir)
    else:
        image_dir = Path(source)
    lap("extract")

    names = image_names(features)
    mode = pairs if pairs != "auto" else ("exhaustive" if len(names) <= EXHAUSTIVE_UP_TO else "sequential")
    pair_list = exhaustive_pairs(names) if mode == "exhaustive" else sequential_pairs(names, window, quadratic=True)
    pairs_path = write_pairs(pair_list, out_dir / "pairs.txt")
    matched = match_pairs(features, pairs_path, out_dir / "matches.h5", settings=matching, engine=engine,
                          progress=progress)
    lap("match")

    database = write_database(features, out_dir / "matches.h5", out_dir / "database.db", pairs=pairs_path,
                              camera_model=camera_model, camera_mode=camera_mode, verify=True, overwrite=True)
    lap("database")
    preset = AUTO_MAPPING[image_source.kind] if mapping == "auto" else mapping
    model = _map_best_of(out_dir / "database.db", image_dir, out_dir, **MAPPING_PRESETS[preset])
    lap("mapping")

    numbers = summarize(model)
    picture = plot_reconstruction(
        model, out_dir / "reconstruction.png",
        title=f"{Path(source).name}: {numbers['registered_images']}/{len(names)} images, "
              f"{numbers['points3D']} points")
    summary = {
        **numbers,
        "images_total": len(names),
        "pairs_mode": mode,
        "pairs": matched["pairs"],
        "mean_matches": database["matches"] / max(database["pairs"], 1),
        "verified_pairs": database.get("verified_pairs"),
        "inlier_matches": database.get("inlier_matches"),
        "seconds": seconds,
        "settings": {"extraction": extraction.to_dict(),
                     "matching": {**matching.to_dict(), "features": matching.features or extraction.features},
                     "camera_model": camera_model, "camera_mode": camera_mode, "every": every,
                     "mapping": preset},
        "files": {"features": str(features), "pairs": str(pairs_path), "matches": str(out_dir / "matches.h5"),
                  "database": str(out_dir / "database.db"), "model": str(out_dir / "sparse"),
                  "picture": str(picture)},
        "new_images_extracted": extracted["extracted"],
    }
    tmp = out_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, out_dir / "summary.json")
    return summary


def _map_best_of(database: Path, image_dir: Path, out_dir: Path, attempts: int, options: Dict[str, Any]):
    """Map ``attempts`` times (random seeds 0, 1, ...) and keep the model with the most
    observations in ``out_dir/sparse``; RuntimeError when every attempt fails."""
    best, best_score, errors = None, -1, []
    for seed in range(attempts):
        work = out_dir / f".mapping-seed{seed}"
        try:
            model = map_database(database, image_dir, work, {**options, "random_seed": seed})
        except RuntimeError as err:
            errors.append(str(err))
            continue
        score = model.compute_num_observations()
        logger.info("mapping seed %d: %d images, %d points, %d observations", seed, model.num_reg_images(),
                    model.num_points3D(), score)
        if score > best_score:
            best, best_score, best_dir = model, score, work
    try:
        if best is None:
            raise RuntimeError(errors[-1])
        target = out_dir / "sparse"
        if target.exists():
            shutil.rmtree(target)
        (best_dir / "sparse").replace(target)
    finally:
        for seed in range(attempts):
            shutil.rmtree(out_dir / f".mapping-seed{seed}", ignore_errors=True)
    return best


__all__ = ["AUTO_MAPPING", "EXHAUSTIVE_UP_TO", "MAPPING_PRESETS", "PAIR_MODES", "reconstruct"]
