"""From hloc-layout features and matches to a COLMAP database and a sparse model (pycolmap).

COLMAP reconstructs from a SQLite *database* holding, per image, a camera (intrinsics), the
keypoints and, per image pair, the raw matches (index pairs) and the *two-view geometry*
(the matches that survive a robust fit of an essential / fundamental matrix or homography:
the inliers). Incremental mapping reads only the two-view geometries, so a database without
geometric verification can be inspected or verified later but not mapped.

- :func:`write_database`: a features file and a matches file (see
  :mod:`~specglue.collection.hloc_io`) to a database, optionally verified, as hloc's
  ``import_features`` / ``import_matches`` / ``estimation_and_geometric_verification`` do.
  Keypoints are shifted by +0.5 px: hloc's files put the centre of the top-left pixel at
  (0, 0), COLMAP at (0.5, 0.5). Cameras get COLMAP's defaults for images without EXIF
  (focal 1.2 * max(W, H), principal point at the image centre, no distortion) and are
  refined by bundle adjustment. Each camera gets a trivial rig and each image a frame of its
  own, as COLMAP's image import makes them.
- :func:`map_database`: incremental mapping; the model with the most registered images is
  kept and written (COLMAP binary) to ``out_dir/sparse/``.
- :func:`summarize` / :func:`plot_reconstruction`: numbers and a top-view PNG of a model.

pycolmap is optional (``pip install 'specglue[colmap]'``); it is imported on first use.
pycolmap (glog) logs its progress to stderr by itself.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..optional import require
from .hloc_io import leaf_groups, open_h5, read_image_features, read_matches, read_settings
from .pairs import read_pairs

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
Pair = Tuple[str, str]

#: how images share cameras: one for all (``single``), one each (``per-image``), or
#: ``auto``: single for a video (features file settings ``source_kind == "video"``) whose
#: frames all have the same size, else per-image.
CAMERA_MODES = ("auto", "single", "per-image")

#: COLMAP's default focal length without EXIF, as a factor of the larger image side
DEFAULT_FOCAL_FACTOR = 1.2
#: hloc's pixel coordinates (top-left pixel centre at 0) to COLMAP's (at 0.5)
COLMAP_PIXEL_OFFSET = 0.5
#: RANSAC settings of the verification (hloc's; learned matches hold more outliers than
#: COLMAP's SIFT defaults assume)
VERIFY_MAX_NUM_TRIALS = 20000
VERIFY_MIN_INLIER_RATIO = 0.1
#: seed of every random choice of verification and mapping (repeatable runs)
RANDOM_SEED = 0


def _pycolmap(purpose: str = "building a COLMAP database"):
    return require("pycolmap", "colmap", purpose)


def camera_models() -> List[str]:
    """The camera model names pycolmap knows (``SIMPLE_RADIAL``, ``OPENCV``, ...)."""
    pycolmap = _pycolmap()
    return [name for name in pycolmap.CameraModelId.__members__ if name != "INVALID"]


# ----------------------------------------------------------------------------------------
# Database
# ----------------------------------------------------------------------------------------


def write_database(features_path: PathLike, matches_path: PathLike, database_path: PathLike,
                   pairs: Union[None, PathLike, Sequence[Pair]] = None,
                   camera_model: str = "SIMPLE_RADIAL", camera_mode: str = "auto",
                   verify: bool = False, min_matches: int = 15, overwrite: bool = False
                   ) -> Dict[str, int]:
    """Write a COLMAP database from a features file and a matches file in hloc's layout.

    Every image of the features file goes in (names as stored, ``"a.jpg"``, ``"sub/b.png"``),
    in name order (image ids 1, 2, ...), with all its keypoints. Every pair gets all its raw
    matches, whatever their number.

    Args:
        pairs: the pairs to import: ``(name0, name1)`` tuples, a pairs file, or None for
            every pair of the matches file. A pair listed twice (either way round) goes in once.
        camera_model: a COLMAP camera model name (see :func:`camera_models`).
        camera_mode: one of :data:`CAMERA_MODES`.
        verify: run COLMAP's geometric verification, writing the two-view geometries that
            :func:`map_database` needs. Without it only raw matches are written.
        min_matches: the fewest inliers for a pair to count as verified (COLMAP's
            ``min_num_inliers``); used only with ``verify``.
        overwrite: replace an existing database. The database is written to a temporary
            file next to ``database_path`` and renamed at the end, so a failure leaves an
            existing database as it was.

    Returns:
        counts: ``images``, ``cameras``, ``keypoints`` (total), ``pairs``, ``matches`` (total
        raw matches) and, with ``verify``, ``verified_pairs`` and ``inlier_matches`` (total).

    Raises:
        ValueError: bad arguments, an existing database without ``overwrite``, unreadable
            files, a pair naming an image that is not in the features file or missing from
            the matches file, match indices beyond an image's keypoints, ``single`` cameras
            for images of different sizes.
    """
    pycolmap = _pycolmap()
    if camera_mode not in CAMERA_MODES:
        raise ValueError(f"camera_mode must be one of {', '.join(CAMERA_MODES)}, got {camera_mode!r}")
    models = camera_models()
    if camera_model not in models:
        raise ValueError(f"unknown camera_model {camera_model!r}: COLMAP's models are "
                         f"{', '.join(models)}")
    if int(min_matches) < 1 or int(min_matches) != min_matches:
        raise ValueError(f"min_matches must be an integer >= 1, got {min_matches}")
    database_path = Path(database_path)
    if database_path.is_dir():
        raise ValueError(f"database_path {database_path} is a folder, expected a file path")
    if database_path.exists() and not overwrite:
        raise ValueError(f"database {database_path} already exists: pass overwrite=True to "
                         "replace it")
    features_path, matches_path = Path(features_path), Path(matches_path)

    with open_h5(features_path, what="features file") as ffile:
        images = _read_images(ffile, features_path)
        settings = read_settings(ffile)
    names = sorted(images)
    camera_of = _assign_cameras(images, camera_mode, settings, features_path)

    database_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{database_path.name}.", suffix=".tmp",
                                    dir=database_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with open_h5(matches_path, what="matches file") as mfile:
            if pairs is None:
                pair_list = _pairs_in_matches_file(mfile, names, matches_path)
            elif isinstance(pairs, (str, Path)):
                pair_list = read_pairs(pairs)
            else:
                pair_list = [tuple(p) for p in pairs]
            pair_list = _check_pairs(pair_list, images, features_path)
            counts = _fill_database(pycolmap, tmp, names, images, camera_of, camera_model,
                                    pair_list, mfile, matches_path)
        if verify:
            counts.update(_verify(pycolmap, tmp, int(min_matches)))
        tmp.replace(database_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("wrote COLMAP database %s: %s", database_path, counts)
    return counts


def _read_images(ffile: Any, path: Path) -> Dict[str, Tuple[np.ndarray, Tuple[int, int]]]:
    """name -> (keypoints [N, 2] in hloc's pixels, (W, H)) of every image of a features file."""
    names = leaf_groups(ffile, "keypoints")
    if not names:
        raise ValueError(f"features file {path} holds no image (no group with keypoints)")
    images: Dict[str, Tuple[np.ndarray, Tuple[int, int]]] = {}
    for name in names:
        feats = read_image_features(ffile, name)
        kpts = feats.keypoints
        if kpts.ndim != 2 or kpts.shape[1] != 2 or not np.isfinite(kpts).all():
            raise ValueError(f"features file {path}: keypoints of {name!r} must be finite "
                             f"[N, 2], got shape {tuple(kpts.shape)}")
        size = feats.image_size
        if size is None or np.asarray(size).shape != (2,) or not (np.asarray(size) > 0).all():
            raise ValueError(f"features file {path}: image_size of {name!r} must be (W, H) > 0, "
                             f"got {size}")
        images[name] = (kpts, (int(round(float(size[0]))), int(round(float(size[1])))))
    return images


def _assign_cameras(images: Dict[str, Tuple[np.ndarray, Tuple[int, int]]], camera_mode: str,
                    settings: Dict[str, Any], path: Path) -> Dict[str, int]:
    """name -> camera index (0-based), per ``camera_mode``."""
    names = sorted(images)
    sizes = {images[n][1] for n in names}
    if camera_mode == "auto":
        single = settings.get("source_kind") == "video" and len(sizes) == 1
        logger.info("camera_mode auto: %s (source_kind %s, %d image size(s))",
                    "single" if single else "per-image", settings.get("source_kind"), len(sizes))
    elif camera_mode == "single":
        if len(sizes) > 1:
            shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
            raise ValueError(f"camera_mode 'single' needs images of one size, but the features "
                             f"file {path} has {len(sizes)} sizes ({shown}); use 'per-image'")
        single = True
    else:
        single = False
    return {n: 0 if single else i for i, n in enumerate(names)}


def _pairs_in_matches_file(mfile: Any, names: Sequence[str], path: Path) -> List[Pair]:
    """The image pairs of a matches file, mapping its group names back to image names.

    Pair groups are ``name0/name1`` with ``/`` inside names written ``-`` (or, in hloc's older
    files, ``name0_name1``), so the names are looked up among the features file's images.
    """
    dashed: Dict[str, str] = {}
    for name in names:
        key = name.replace("/", "-")
        if key in dashed:
            raise ValueError(f"images {dashed[key]!r} and {name!r} get the same pair name in a "
                             f"matches file ({key!r}): pass the pairs explicitly")
        dashed[key] = name
    pairs: List[Pair] = []
    for group in leaf_groups(mfile, "matches0"):
        parts = group.split("/")
        if len(parts) == 2:
            found = [dashed.get(p) for p in parts]
            if None in found:
                missing = parts[found.index(None)]
                raise ValueError(f"matches file {path}: pair {group!r} names image {missing!r}, "
                                 "which is not in the features file")
            pairs.append((found[0], found[1]))
            continue
        splits = [(group[:i], group[i + 1:]) for i, c in enumerate(group) if c == "_"
                  and group[:i] in dashed and group[i + 1:] in dashed]
        if len(splits) != 1:
            raise ValueError(f"matches file {path}: cannot tell the two images of pair group "
                             f"{group!r} among the features file's images")
        pairs.append((dashed[splits[0][0]], dashed[splits[0][1]]))
    if not pairs:
        raise ValueError(f"matches file {path} holds no pair (no group with matches0)")
    return pairs


def _check_pairs(pairs: Iterable[Sequence[str]], images: Dict[str, Any], path: Path) -> List[Pair]:
    """Pairs checked against the features file; repeats (either way round) dropped."""
    seen = set()
    out: List[Pair] = []
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"pairs must be (name0, name1), got {pair!r}")
        name0, name1 = str(pair[0]), str(pair[1])
        for name in (name0, name1):
            if name not in images:
                raise ValueError(f"pair ({name0}, {name1}): image {name!r} is not in the "
                                 f"features file {path}")
        if name0 == name1:
            raise ValueError(f"pair ({name0}, {name1}) pairs an image with itself")
        key = frozenset((name0, name1))
        if key in seen:
            logger.debug("pair (%s, %s) listed twice, imported once", name0, name1)
            continue
        seen.add(key)
        out.append((name0, name1))
    if not out:
        raise ValueError("no pair to import")
    return out


def _fill_database(pycolmap, path: Path, names: Sequence[str],
                   images: Dict[str, Tuple[np.ndarray, Tuple[int, int]]],
                   camera_of: Dict[str, int], camera_model: str, pairs: Sequence[Pair],
                   mfile: Any, matches_path: Path) -> Dict[str, int]:
    """Cameras, rigs, images, frames, keypoints and raw matches into an empty database."""
    counts = {"images": 0, "cameras": 0, "keypoints": 0, "pairs": 0, "matches": 0}
    with pycolmap.Database.open(str(path)) as db, pycolmap.DatabaseTransaction(db):
        cameras: Dict[int, Tuple[Any, int]] = {}  # camera index -> (Camera, rig id)
        image_ids: Dict[str, int] = {}
        for name in names:
            kpts, (width, height) = images[name]
            index = camera_of[name]
            if index not in cameras:
                camera = pycolmap.Camera.create_from_model_name(
                    0, camera_model, DEFAULT_FOCAL_FACTOR * max(width, height), width, height)
                camera.camera_id = db.write_camera(camera)
                rig = pycolmap.Rig()
                rig.add_ref_sensor(camera.sensor_id)
                cameras[index] = (camera, db.write_rig(rig))
            camera, rig_id = cameras[index]
            image_id = db.write_image(pycolmap.Image(name=name, camera_id=camera.camera_id))
            frame = pycolmap.Frame()
            frame.rig_id = rig_id
            frame.add_data_id(db.read_image(image_id).data_id)
            db.write_frame(frame)
            db.write_keypoints(image_id, (kpts + COLMAP_PIXEL_OFFSET).astype(np.float32))
            image_ids[name] = image_id
            counts["keypoints"] += len(kpts)
        counts["images"], counts["cameras"] = len(image_ids), len(cameras)

        for name0, name1 in pairs:
            try:
                matches, _ = read_matches(mfile, name0, name1)
            except KeyError as err:
                raise ValueError(err.args[0]) from None
            n0, n1 = len(images[name0][0]), len(images[name1][0])
            if len(matches) and ((matches < 0).any() or matches[:, 0].max() >= n0
                                 or matches[:, 1].max() >= n1):
                raise ValueError(f"matches file {matches_path}: pair ({name0}, {name1}) has "
                                 f"match indices beyond the keypoints ({n0}, {n1})")
            db.write_matches(image_ids[name0], image_ids[name1], matches.astype(np.uint32))
            counts["pairs"] += 1
            counts["matches"] += len(matches)
    return counts


def _verify(pycolmap, path: Path, min_matches: int) -> Dict[str, int]:
    """COLMAP's geometric verification of every matched pair of a database, in place."""
    options = pycolmap.TwoViewGeometryOptions()
    options.min_num_inliers = min_matches
    options.ransac.max_num_trials = VERIFY_MAX_NUM_TRIALS
    options.ransac.min_inlier_ratio = VERIFY_MIN_INLIER_RATIO
    options.ransac.random_seed = RANDOM_SEED
    pycolmap.geometric_verification(str(path), pycolmap.GeometricVerifierOptions(),
                                    pycolmap.ExistingMatchedPairingOptions(), options)
    failed = {pycolmap.TwoViewGeometryConfiguration.UNDEFINED,
              pycolmap.TwoViewGeometryConfiguration.DEGENERATE}
    verified = inliers = 0
    with pycolmap.Database.open(str(path)) as db:
        for geometry in db.read_two_view_geometries()[1]:
            if geometry.config not in failed and len(geometry.inlier_matches) >= min_matches:
                verified += 1
                inliers += len(geometry.inlier_matches)
    return {"verified_pairs": verified, "inlier_matches": inliers}


# ----------------------------------------------------------------------------------------
# Mapping
# ----------------------------------------------------------------------------------------


def map_database(database_path: PathLike, image_dir: Optional[PathLike], out_dir: PathLike,
                 options: Union[None, Dict[str, Any], Any] = None):
    """Incremental mapping of a verified database; the largest model, written and returned.

    Layout: ``out_dir/sparse/`` holds the kept model in COLMAP's binary format
    (``cameras.bin``, ``images.bin``, ``points3D.bin``, ``rigs.bin``, ``frames.bin``),
    readable with ``pycolmap.Reconstruction(out_dir / "sparse")``; an existing ``sparse/``
    is replaced once the new one is written. Smaller models (disconnected parts of the
    collection) are logged and dropped.

    Args:
        image_dir: the image folder, used only for the colours of the points; None for grey
            points (no images read).
        options: ``pycolmap.IncrementalPipelineOptions``, used as given, or a dict of its
            fields (nested dicts for ``mapper`` / ``triangulation``) applied over the
            defaults here: ``random_seed`` = :data:`RANDOM_SEED`, so RANSAC and the other
            random choices repeat from run to run (with several threads, bundle adjustment of
            large problems may still differ in the last digits; ``num_threads=1`` for runs
            that repeat exactly).

    Returns:
        the kept ``pycolmap.Reconstruction``.

    Raises:
        ValueError: the database or image folder is missing, or the database holds no
            two-view geometry (write it with ``verify=True``).
        RuntimeError: mapping registered fewer than two images.
    """
    pycolmap = _pycolmap("mapping a COLMAP database")
    database_path = Path(database_path)
    if not database_path.is_file():
        raise ValueError(f"database {database_path} does not exist")
    if image_dir is not None and not Path(image_dir).is_dir():
        raise ValueError(f"image_dir {image_dir} is not a folder (pass None for grey points)")
    with pycolmap.Database.open(str(database_path)) as db:
        num_images, num_verified = db.num_images(), db.num_verified_image_pairs()
    if num_verified == 0:
        raise ValueError(f"database {database_path} holds no two-view geometry, which mapping "
                         "needs: write it with verify=True")

    if isinstance(options, pycolmap.IncrementalPipelineOptions):
        pipeline_options = options
    else:
        pipeline_options = pycolmap.IncrementalPipelineOptions()
        pipeline_options.random_seed = RANDOM_SEED
        if image_dir is None:
            pipeline_options.extract_colors = False
        if options:
            try:
                pipeline_options.mergedict(dict(options))
            except (AttributeError, TypeError) as err:
                raise ValueError(f"bad mapping options {options!r}: {err} (fields of "
                                 "pycolmap.IncrementalPipelineOptions expected)") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mapping-", dir=out_dir))
    try:
        # pycolmap checks that the image path is a folder even when it reads no image
        models = pycolmap.incremental_mapping(
            str(database_path), str(image_dir if image_dir is not None else work),
            str(work), pipeline_options)
        if not models:
            # COLMAP logs why: "No good initial image pair found" or "Discarding
            # reconstruction due to bad initial pair" (e.g. only two images, whose points are
            # all two-view tracks, which the default triangulation ignores)
            raise RuntimeError(
                f"mapping {database_path} failed: no model was kept from {num_images} images "
                f"({num_verified} verified pairs): no initial image pair with enough inliers "
                "and triangulation angle was found, or it was discarded (fewer than 2 images "
                "registered; see pycolmap's log)")
        sizes = {key: model.num_reg_images() for key, model in models.items()}
        best = max(sizes, key=lambda key: (sizes[key], -key))
        reconstruction = models[best]
        if sizes[best] < 2:
            raise RuntimeError(f"mapping {database_path} failed: fewer than 2 of {num_images} "
                               "images were registered")
        if len(models) > 1:
            logger.info("mapping made %d models (registered images %s); keeping model %d",
                        len(models), sorted(sizes.values(), reverse=True), best)
        tmp = work / "sparse"
        tmp.mkdir()
        reconstruction.write(str(tmp))
        target = out_dir / "sparse"
        if target.exists():
            old = work / "old"
            target.replace(old)
        tmp.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("mapped %s: %d of %d images registered, %d points, written to %s",
                database_path, reconstruction.num_reg_images(), num_images,
                reconstruction.num_points3D(), target)
    return reconstruction


# ----------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------


def _registered_images(reconstruction) -> List[Any]:
    """The registered images of a model, in name order."""
    return sorted((reconstruction.image(i) for i in reconstruction.reg_image_ids()),
                  key=lambda image: image.name)


def summarize(reconstruction) -> Dict[str, Any]:
    """The numbers of a model.

    Returns:
        ``registered_images``; ``images`` (every image the model knows, registered or not:
        all of the database's for a model from :func:`map_database`); ``cameras``;
        ``points3D``; ``observations`` (2D points with a 3D point); ``mean_track_length``
        (observations per 3D point); ``mean_reprojection_error`` (px); ``registered_names``
        (sorted).
    """
    num_points = reconstruction.num_points3D()
    return {
        "registered_images": int(reconstruction.num_reg_images()),
        "images": int(reconstruction.num_images()),
        "cameras": int(reconstruction.num_cameras()),
        "points3D": int(num_points),
        "observations": int(reconstruction.compute_num_observations()),
        "mean_track_length": float(reconstruction.compute_mean_track_length()) if num_points else 0.0,
        "mean_reprojection_error": (float(reconstruction.compute_mean_reprojection_error())
                                    if num_points else float("nan")),
        "registered_names": [image.name for image in _registered_images(reconstruction)],
    }


def plot_reconstruction(reconstruction, path: PathLike, title: Optional[str] = None) -> Path:
    """A top view of a model as PNG: 3D points (grey) and the camera path.

    The view is the plane of the two largest principal axes of the camera centres and points
    together (for a ground-level collection: seen from above). Cameras are drawn in name
    order, joined by a line, each with a marker and a short line along its viewing direction;
    the first is marked "start". The axes span the 1st to 99th percentiles of the points and
    every camera, so a few far points do not shrink the scene. Written through a temporary
    file and a rename.

    Raises:
        ValueError: the model has no registered image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    images = _registered_images(reconstruction)
    if not images:
        raise ValueError("the reconstruction has no registered image to plot")
    centres = np.array([image.projection_center() for image in images], dtype=np.float64)  # [C, 3]
    views = np.array([image.viewing_direction() for image in images], dtype=np.float64)  # [C, 3]
    points = np.array([p.xyz for p in reconstruction.points3D.values()],
                      dtype=np.float64).reshape(-1, 3)  # [P, 3]

    everything = np.concatenate([centres, points])
    mean = everything.mean(0)
    if len(everything) >= 3:
        _, _, vt = np.linalg.svd(everything - mean, full_matrices=False)
        axes = vt[:2]  # [2, 3]
    else:
        axes = np.eye(3)[:2]
    # fixed signs (the SVD's are arbitrary): the mean view has a positive second coordinate,
    # the path from the first to the last camera a positive first one
    if np.dot(views.mean(0), axes[1]) < 0:
        axes[1] = -axes[1]
    if np.dot(centres[-1] - centres[0], axes[0]) < 0:
        axes[0] = -axes[0]
    cam2d = (centres - mean) @ axes.T  # [C, 2]
    pts2d = (points - mean) @ axes.T  # [P, 2]
    view2d = views @ axes.T  # [C, 2]

    if len(pts2d):
        low, high = np.percentile(pts2d, 1, axis=0), np.percentile(pts2d, 99, axis=0)
        low, high = np.minimum(low, cam2d.min(0)), np.maximum(high, cam2d.max(0))
    else:
        low, high = cam2d.min(0), cam2d.max(0)
    extent = float(max((high - low).max(), 1e-9))
    margin = 0.05 * extent
    arrow = 0.06 * extent
    norm = np.linalg.norm(view2d, axis=1, keepdims=True)
    view2d = np.where(norm > 1e-12, view2d / np.maximum(norm, 1e-12), 0.0) * arrow

    fig = Figure(figsize=(7.0, 7.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if len(pts2d):
        ax.scatter(pts2d[:, 0], pts2d[:, 1], s=1.5, c="0.6", linewidths=0, label="3D points")
    ax.plot(cam2d[:, 0], cam2d[:, 1], "-", color="tab:blue", lw=1.0, alpha=0.7)
    ax.add_collection(LineCollection(np.stack([cam2d, cam2d + view2d], 1), colors="tab:red",
                                     linewidths=1.0, label="viewing direction"))
    ax.scatter(cam2d[:, 0], cam2d[:, 1], s=14, c="tab:blue", zorder=3, label="cameras")
    ax.annotate("start", cam2d[0], textcoords="offset points", xytext=(4, 4), fontsize=8)
    centre, half = (low + high) / 2, extent / 2 + margin  # a square view, equal scales
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("first principal axis")
    ax.set_ylabel("second principal axis")
    ax.legend(loc="best", fontsize=8, markerscale=2)
    if title is None:
        error = summarize(reconstruction)["mean_reprojection_error"]
        title = (f"{len(images)} registered images, {len(points)} points, "
                 f"mean reprojection error {error:.2f} px")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, format="png", facecolor="white")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.debug("saved reconstruction plot to %s", path)
    return path


__all__ = [
    "CAMERA_MODES",
    "camera_models",
    "map_database",
    "plot_reconstruction",
    "summarize",
    "write_database",
]
