"""The whole chain in one call: images or a video to a COLMAP sparse model, a summary, pictures.

``reconstruct(SOURCE, OUT_DIR)`` runs, each stage resumable and each also available alone::

    extract     SOURCE -> OUT_DIR/features.h5            (specglue extract)
    pairs       -> OUT_DIR/pairs.txt                     (specglue pairs)
    match       -> OUT_DIR/matches.h5                    (specglue match-pairs)
    database    -> OUT_DIR/database.db, verified         (specglue colmap --verify)
    mapping     -> OUT_DIR/sparse/                       (pycolmap incremental or global mapping,
                                                          a preset of :data:`MAPPING_PRESETS`)
    report      -> OUT_DIR/summary.json, reconstruction.png, model.html   (specglue view)

A video's frames are also saved to ``OUT_DIR/images/`` (COLMAP colours points from them).
Pairs: ``auto`` matches every pair of a photo collection of up to :data:`EXHAUSTIVE_UP_TO`
images, and a sequential window (``window`` frames + quadratic offsets) for a video, a
sequence of numbered frames, or a larger collection. A rerun reuses the features and matches
already computed (with the same settings).

**Cameras.** A video or a sequence (see :mod:`~specglue.collection.sources`) is one camera,
mapped with the ``video`` preset. Its intrinsics are, in this order of preference:

- *given* (``camera_params``: COLMAP's parameter list, or a COLMAP cameras file): held fixed;
- *self-calibrated*: the focal starts from the fundamental matrices of the verified pairs
  (:func:`~specglue.collection.colmap.self_calibrate`) -- COLMAP's default start, 1.2 x the
  larger side, is a telephoto lens, far from an endoscope's wide angle, and bundle
  adjustment diverges from it on small baselines (2304 px to 5542 px on the sinus sequence,
  truth 666 px). Mapping then refines the focal, never the distortion (unless
  ``refine_distortion``), and keeps the refined focal only where the views constrain it:
  when it ends outside :data:`~specglue.collection.colmap.PLAUSIBLE_FOCAL_RANGE` or more than
  :data:`FOCAL_RUNAWAY` times away from its start, the mapping is run again with the focal
  held at its start.

A photo collection gets one camera per image with COLMAP's defaults, refined freely.
After mapping, :func:`~specglue.collection.colmap.check_cameras` judges the intrinsics and the
triangulation angles: ``summary["reliable"]`` and ``summary["warnings"]`` say whether the
geometry can be trusted, and what to do when not. With ``ground_truth`` (known poses of the
images), the summary's ``trajectory`` holds the errors of
:func:`~specglue.geometry.trajectory.evaluate_trajectory`, and the pictures draw the aligned
ground truth beside the estimate.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from ..atomic import atomic_write_text
from ..errors import SpecglueError
from .colmap import (MAPPERS, PLAUSIBLE_FOCAL_RANGE, SEQUENCE_KINDS, check_cameras, database_cameras,
                     map_database, read_camera_file, self_calibrate, summarize, write_database)
from .extract import ExtractionSettings, extract_features
from .match import MatchSettings, match_pairs
from .pairs import exhaustive_pairs, image_names, sequential_pairs, write_pairs
from .sources import ImageSource, write_frames
from .view import plot_model, write_model_page

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
PAIR_MODES = ("auto", "exhaustive", "sequential")
#: ``pairs="auto"``: exhaustive for photo collections up to this many images, sequential beyond
EXHAUSTIVE_UP_TO = 40
#: a refined focal this many times away from its self-calibrated start (either way) is not
#: constrained by the views: mapping is run again with the focal held
FOCAL_RUNAWAY = 2.0
#: named settings of mapping: ``attempts`` (incremental mapping runs with random seeds 0, 1,
#: ...; the model with the most 2D-3D observations is kept) and the options of each mapper
#: (fields of ``pycolmap.IncrementalPipelineOptions`` / ``GlobalPipelineOptions``).
#: ``photos``: COLMAP's defaults, one run. ``video``: for the small baselines of consecutive
#: frames (endoscopy: the camera moves millimetres between frames), COLMAP's
#: triangulation-angle limits lowered -- with the defaults (16 degrees to start, 1.5 to keep a
#: point) the 12 laparoscopic frames give no initial pair at all -- and three runs, because
#: with such baselines the initial pair decides everything: seed 0 gave 7 frames and 5 points,
#: seed 1 all 12 frames and 187 points.
MAPPING_PRESETS: Dict[str, Dict[str, Any]] = {
    "photos": {"attempts": 1, "incremental": {}, "global": {}},
    "video": {
        "attempts": 3,
        "incremental": {
            "mapper": {"init_min_tri_angle": 1.0, "init_min_num_inliers": 30, "filter_min_tri_angle": 0.5,
                       "ba_local_min_tri_angle": 2.0},
            "triangulation": {"min_angle": 0.5},
            "min_model_size": 3,
        },
        "global": {"mapper": {"min_tri_angle_deg": 0.5, "retriangulation": {"min_angle": 0.5}}},
    },
}
#: ``mapping="auto"``: the preset of each kind of source
AUTO_MAPPING = {"video": "video", "sequence": "video", "folder": "photos"}
#: what mapping may refine: ``all`` (COLMAP's defaults), ``focal`` (not the distortion) or
#: ``none`` (intrinsics held)
REFINE_CHOICES = ("all", "focal", "none")


def intrinsics_options(mapper: str, refine: str) -> Dict[str, Any]:
    """The mapping options that let ``refine`` (:data:`REFINE_CHOICES`) of the intrinsics change."""
    focal, extra = refine != "none", refine == "all"
    if mapper == "global":
        return {"mapper": {"bundle_adjustment": {"refine_focal_length": focal, "refine_extra_params": extra,
                                                 "refine_principal_point": False}}}
    return {"ba_refine_focal_length": focal, "ba_refine_extra_params": extra, "ba_refine_principal_point": False,
            "mapper": {"abs_pose_refine_focal_length": focal, "abs_pose_refine_extra_params": extra}}


def _merged(base: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    """``base`` with ``extra`` laid over it, nested dicts merged."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


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
    camera_params: Union[None, PathLike, Sequence[float]] = None,
    refine_distortion: bool = False,
    mapping: str = "auto",
    mapper: str = "incremental",
    ground_truth: Optional[PathLike] = None,
    engine: Any = None,
    progress: bool = True,
) -> Dict[str, Any]:
    """Reconstruct ``source`` (an image folder or a video) into ``out_dir`` (see the module doc).

    Args:
        extraction / matching: the settings of the two learned stages (defaults: ALIKED
            2048 keypoints with detected highlight masks and field of view; official weights).
        masks_dir: the masks of ``extraction.specular == "masks"``.
        every: keep one video frame in ``every``.
        pairs / window: which pairs to match (:data:`PAIR_MODES`) and the sequential window.
        camera_model / camera_mode: see :func:`specglue.collection.colmap.write_database`.
        camera_params: known intrinsics, held fixed: COLMAP's parameter list of
            ``camera_model``, or a COLMAP ``cameras.txt`` / model folder
            (:func:`~specglue.collection.colmap.read_camera_file`; its model is used).
        refine_distortion: let mapping refine the distortion of a sequence's camera too.
        mapping: a :data:`MAPPING_PRESETS` name, or ``"auto"`` (:data:`AUTO_MAPPING`: ``video``
            for a video or a sequence of numbered frames, ``photos`` for other folders).
        mapper: ``incremental`` or ``global`` (:data:`~specglue.collection.colmap.MAPPERS`).
        ground_truth: known poses of the images (a COLMAP model or the endoscopy layout,
            :func:`~specglue.geometry.poses.read_sequence_poses`) to measure the trajectory against.
        engine: the engine of extraction and matching (default: this process).

    Returns:
        the summary also written to ``summary.json``: the model's numbers
        (:func:`~specglue.collection.colmap.summarize`), ``intrinsics`` (where they started and
        how they were refined), ``cameras``, ``reliable`` and ``warnings``
        (:func:`~specglue.collection.colmap.check_cameras`), ``trajectory`` (with
        ``ground_truth``), the stages' counts and seconds, the settings and the output paths.

    Raises:
        ValueError: bad input at any stage (missing source, unreadable video, camera
            parameters that do not fit, ...).
        SpecglueError: mapping registered fewer than two images.
    """
    if pairs not in PAIR_MODES:
        raise ValueError(f"pairs must be one of {PAIR_MODES}, got {pairs!r}")
    _check_mapping(mapping, mapper)
    out_dir = Path(out_dir)
    extraction = extraction or ExtractionSettings()
    matching = matching or MatchSettings()
    start = time.monotonic()
    features = out_dir / "features.h5"
    extracted = extract_features(source, features, extraction, masks_dir=masks_dir, every=every,
                                 engine=engine, progress=progress)
    if extracted["source_kind"] == "video":
        image_dir = out_dir / "images"
        write_frames(ImageSource(source, every=every), image_dir)
    else:
        image_dir = Path(source)
    seconds = {"extract": round(time.monotonic() - start, 2)}

    start = time.monotonic()
    names = image_names(features)
    mode = pairs if pairs != "auto" else (
        "exhaustive" if extracted["source_kind"] == "folder" and len(names) <= EXHAUSTIVE_UP_TO else "sequential")
    pair_list = exhaustive_pairs(names) if mode == "exhaustive" else sequential_pairs(names, window, quadratic=True)
    pairs_path = write_pairs(pair_list, out_dir / "pairs.txt")
    matched = match_pairs(features, pairs_path, out_dir / "matches.h5", settings=matching, engine=engine,
                          progress=progress)
    seconds["match"] = round(time.monotonic() - start, 2)
    logger.info("reconstruct: extraction %.1f s, matching %.1f s", seconds["extract"], seconds["match"])

    mapped = map_features(features, out_dir / "matches.h5", out_dir, pairs=pairs_path, image_dir=image_dir,
                          camera_model=camera_model, camera_mode=camera_mode, camera_params=camera_params,
                          refine_distortion=refine_distortion, mapping=mapping, mapper=mapper,
                          ground_truth=ground_truth, title=f"{Path(source).name}")
    summary = {
        **mapped,
        "pairs_mode": mode,
        "pairs": matched["pairs"],
        "seconds": {**seconds, **mapped["seconds"]},
        "settings": {"extraction": extraction.to_dict(),
                     "matching": {**matching.to_dict(), "features": matching.features or extraction.features},
                     "every": every, **mapped["settings"]},
        "files": {"features": str(features), "pairs": str(pairs_path), "matches": str(out_dir / "matches.h5"),
                  **mapped["files"]},
        "new_images_extracted": extracted["extracted"],
    }
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    return summary


def _check_mapping(mapping: str, mapper: str) -> None:
    if mapping != "auto" and mapping not in MAPPING_PRESETS:
        raise ValueError(f"mapping must be 'auto' or one of {sorted(MAPPING_PRESETS)}, got {mapping!r}")
    if mapper not in MAPPERS:
        raise ValueError(f"mapper must be one of {MAPPERS}, got {mapper!r}")


def map_features(
    features_path: PathLike,
    matches_path: PathLike,
    out_dir: PathLike,
    pairs: Optional[PathLike] = None,
    image_dir: Optional[PathLike] = None,
    camera_model: str = "SIMPLE_RADIAL",
    camera_mode: str = "auto",
    camera_params: Union[None, PathLike, Sequence[float]] = None,
    refine_distortion: bool = False,
    mapping: str = "auto",
    mapper: str = "incremental",
    ground_truth: Optional[PathLike] = None,
    title: Optional[str] = None,
) -> Dict[str, Any]:
    """The stages of :func:`reconstruct` after matching: a verified database, the cameras'
    policy (see the module doc), mapping, checks, the trajectory against ``ground_truth`` and
    the pictures, for a features file and a matches file in hloc's layout.

    Whether the images are a sequence (one camera, the ``video`` preset, a self-calibrated
    focal) comes from the features file's ``source_kind``. ``image_dir`` colours the points
    (None: grey). The other arguments are :func:`reconstruct`'s.

    Returns:
        the summary's model part: :func:`~specglue.collection.colmap.summarize`'s numbers,
        ``images_total``, ``reliable``, ``warnings``, ``intrinsics``, ``cameras_checked``,
        ``median_triangulation_deg``, ``trajectory`` (None without ground truth),
        ``mean_matches`` / ``verified_pairs`` / ``inlier_matches``, ``seconds`` (database,
        mapping, report), ``settings`` and ``files``.

    Raises:
        ValueError: bad arguments or files, camera parameters that do not fit the images.
        SpecglueError: mapping registered fewer than two images.
    """
    from ..storage import open_h5, read_settings

    _check_mapping(mapping, mapper)
    out_dir = Path(out_dir)
    known_size = None
    if isinstance(camera_params, (str, Path)):
        camera_model, camera_params, known_size = read_camera_file(camera_params)
    truth = None
    if ground_truth is not None:
        from ..geometry.poses import read_sequence_poses

        truth = read_sequence_poses(ground_truth)
    with open_h5(features_path, "r", "features file") as f:
        source_kind = read_settings(f).get("source_kind", "folder")
    sequence = source_kind in SEQUENCE_KINDS
    names = image_names(features_path)
    seconds: Dict[str, float] = {}
    start = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal start
        seconds[stage] = round(time.monotonic() - start, 2)
        start = time.monotonic()
        logger.info("reconstruct: %s done in %.1f s", stage, seconds[stage])

    database_path = out_dir / "database.db"
    database = write_database(features_path, matches_path, database_path, pairs=pairs,
                              camera_model=camera_model, camera_mode=camera_mode, camera_params=camera_params,
                              verify=True, overwrite=True)
    if known_size is not None:
        _check_known_size(database_path, known_size)
    start_focal = None
    if camera_params is None and database["cameras"] == 1 and sequence:
        start_focal = self_calibrate(database_path)
    lap("database")

    preset = AUTO_MAPPING.get(source_kind, "photos") if mapping == "auto" else mapping
    if camera_params is not None:
        refine = "none"
    elif sequence and not refine_distortion:
        refine = "focal"
    else:
        refine = "all"
    intrinsics = {"start": database_cameras(database_path), "given": camera_params is not None,
                  "self_calibrated_focal": start_focal, "refined": refine}
    options = _merged(MAPPING_PRESETS[preset][mapper], intrinsics_options(mapper, refine))
    attempts = MAPPING_PRESETS[preset]["attempts"] if mapper == "incremental" else 1
    model = _map_best_of(database_path, image_dir, out_dir, attempts, options, mapper)
    runaway = _runaway_focal(model, start_focal) if refine == "focal" and start_focal is not None else None
    if runaway is not None:
        logger.warning("the refined focal length ran away from its start (%.0f px to %.0f px): mapping again with "
                       "the focal held at its start", start_focal, runaway)
        intrinsics["refined"], intrinsics["runaway_focal"] = "none", runaway
        options = _merged(MAPPING_PRESETS[preset][mapper], intrinsics_options(mapper, "none"))
        model = _map_best_of(database_path, image_dir, out_dir, attempts, options, mapper)
    lap("mapping")

    numbers = summarize(model)
    checks = check_cameras(model)
    trajectory, reference = None, None
    if truth is not None:
        from ..geometry.poses import reconstruction_poses
        from ..geometry.trajectory import evaluate_trajectory, reference_in_estimate

        judged = [n for n in names if n in truth.T_cam_from_world]
        trajectory = evaluate_trajectory(reconstruction_poses(model, str(out_dir / "sparse")), truth, judged)
        reference = {n: c for n, c in reference_in_estimate(truth, trajectory["similarity"]).items() if n in judged}
    title = f"{title or out_dir.name}: {numbers['registered_images']}/{len(names)} images, {numbers['points3D']} points"
    picture = plot_model(model, out_dir / "reconstruction.png", reference=reference, title=title)
    page = write_model_page(model, out_dir / "model.html", reference=reference, title=title)
    for warning in checks["warnings"]:
        logger.warning("reconstruction %s is unreliable: %s", out_dir, warning)
    lap("report")
    return {
        **numbers,
        "images_total": len(names),
        "reliable": checks["reliable"],
        "warnings": checks["warnings"],
        "intrinsics": intrinsics,
        "cameras_checked": checks["cameras"],
        "median_triangulation_deg": checks["median_triangulation_deg"],
        "trajectory": trajectory,
        "mean_matches": database["matches"] / max(database["pairs"], 1),
        "verified_pairs": database.get("verified_pairs"),
        "inlier_matches": database.get("inlier_matches"),
        "seconds": seconds,
        "settings": {"source_kind": source_kind, "camera_model": camera_model, "camera_mode": camera_mode,
                     "camera_params": None if camera_params is None else [float(v) for v in camera_params],
                     "refine_distortion": refine_distortion, "mapping": preset, "mapper": mapper,
                     "ground_truth": None if ground_truth is None else str(ground_truth)},
        "files": {"database": str(database_path), "model": str(out_dir / "sparse"), "picture": str(picture),
                  "page": str(page)},
    }


def _check_known_size(database_path: Path, known_size: Sequence[int]) -> None:
    """Refuse known intrinsics read from a file for images of another size."""
    sizes = {(c["width"], c["height"]) for c in database_cameras(database_path)}
    if sizes != {tuple(known_size)}:
        raise ValueError(f"the given camera is {known_size[0]}x{known_size[1]}, but the images are "
                         f"{', '.join(f'{w}x{h}' for w, h in sorted(sizes))}: give intrinsics for the images' size")


def _runaway_focal(model: Any, start_focal: float) -> Optional[float]:
    """A refined focal that ended implausible or :data:`FOCAL_RUNAWAY` times off its start, or None."""
    low, high = PLAUSIBLE_FOCAL_RANGE
    for camera in model.cameras.values():
        focal = camera.mean_focal_length()
        if not (low <= focal / camera.width <= high and 1 / FOCAL_RUNAWAY <= focal / start_focal <= FOCAL_RUNAWAY):
            return float(focal)
    return None


def _map_best_of(database: Path, image_dir: Path, out_dir: Path, attempts: int, options: Dict[str, Any],
                 mapper: str):
    """Map ``attempts`` times (random seeds 0, 1, ...) and keep the model with the most
    observations in ``out_dir/sparse``; SpecglueError when every attempt fails."""
    best, best_score, errors = None, -1, []
    for seed in range(attempts):
        work = out_dir / f".mapping-seed{seed}"
        try:
            model = map_database(database, image_dir, work, {**options, "random_seed": seed}, mapper=mapper)
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
            raise SpecglueError(errors[-1])
        target = out_dir / "sparse"
        if target.exists():
            shutil.rmtree(target)
        (best_dir / "sparse").replace(target)
    finally:
        for seed in range(attempts):
            shutil.rmtree(out_dir / f".mapping-seed{seed}", ignore_errors=True)
    return best


__all__ = ["AUTO_MAPPING", "EXHAUSTIVE_UP_TO", "FOCAL_RUNAWAY", "MAPPING_PRESETS", "PAIR_MODES", "REFINE_CHOICES",
           "intrinsics_options", "map_features", "reconstruct"]
