"""From hloc-layout features and matches to a COLMAP database and a sparse model (pycolmap).

COLMAP reconstructs from a SQLite *database* holding, per image, a camera (intrinsics), the
keypoints and, per image pair, the raw matches (index pairs) and the *two-view geometry*
(the matches that survive a robust fit of an essential / fundamental matrix or homography:
the inliers). Incremental mapping reads only the two-view geometries, so a database without
geometric verification can be inspected or verified later but not mapped.

- :func:`write_database`: a features file and a matches file (see
  :mod:`~specglue.storage.hloc`) to a database, optionally verified, as hloc's
  ``import_features`` / ``import_matches`` / ``estimation_and_geometric_verification`` do.
  Keypoints are shifted by +0.5 px: hloc's files put the centre of the top-left pixel at
  (0, 0), COLMAP at (0.5, 0.5). Cameras are made as COLMAP's image import makes them: the
  focal length from the image's EXIF where the source images are at hand and have one
  (``pycolmap.infer_camera_from_image``, marked as a prior), else focal 1.2 * max(W, H);
  principal point at the image centre, no distortion; refined by bundle adjustment. Each camera gets a trivial rig and each image a frame of its
  own, as COLMAP's image import makes them.
  Known intrinsics (``camera_params``) replace those defaults and are marked as a prior.
- :func:`map_database`: incremental or global mapping; the model with the most registered
  images is kept and written (COLMAP binary) to ``out_dir/sparse/``.
- :func:`check_cameras`: are the model's intrinsics and geometry plausible? Bundle adjustment
  can trade focal length against depth when baselines are small (consecutive endoscope frames
  move millimetres) and drive focal and distortion anywhere while the reprojection error stays
  small; this says so instead of reporting success.
- :func:`summarize`: the numbers of a model (pictures of it: :mod:`~specglue.collection.view`).

pycolmap is optional (``pip install 'specglue[colmap]'``); it is imported on first use.
COLMAP's own log (glog, on stderr) is shown only while specglue's logger is enabled for INFO
(``specglue -v``); otherwise only its errors.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..atomic import atomic_write
from ..errors import SpecglueError
from ..optional import require
from ..storage import leaf_groups, open_h5, read_image_features, read_matches, read_settings
from .pairs import read_pairs

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
Pair = Tuple[str, str]

#: how images share cameras: one for all (``single``), one each (``per-image``), or
#: ``auto``: single for a video or a sequence of numbered frames (features file settings
#: ``source_kind``) whose frames all have the same size, else per-image.
CAMERA_MODES = ("auto", "single", "per-image")
#: the source kinds (:class:`~specglue.collection.sources.ImageSource`) that are one camera
SEQUENCE_KINDS = ("video", "sequence")
#: mapping algorithms: COLMAP's incremental mapper, or global SfM (GLOMAP, now in COLMAP:
#: rotation averaging, then global positioning, then bundle adjustment)
MAPPERS = ("incremental", "global")
#: plausible focal lengths, as factors of the image width (an endoscope's wide angle is near
#: the low end: 0.35 for the sinus sequence; a telephoto lens near the high one)
PLAUSIBLE_FOCAL_RANGE = (0.3, 5.0)
#: the largest plausible radial displacement at the image corners, relative to their
#: distance from the principal point (strong barrel distortion of a wide lens is ~0.3)
MAX_PLAUSIBLE_DISTORTION = 0.5
#: below this median triangulation angle (degrees) of the 3D points, depth and focal length
#: are weakly constrained: the scene is seen from nearly one point
MIN_TRIANGULATION_DEG = 1.0

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


def read_camera_file(path: PathLike) -> Tuple[str, List[float], Tuple[int, int]]:
    """Known intrinsics from COLMAP: a ``cameras.txt`` file, or a model folder (see
    :func:`~specglue.geometry.poses.find_colmap_model`) whose cameras all agree.

    Returns:
        ``(model name, params, (width, height))``.

    Raises:
        ValueError: no such file or model, no camera in it, or cameras that differ.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".txt":
        cameras = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            try:
                cameras.append((fields[1], [float(v) for v in fields[4:]], (int(fields[2]), int(fields[3]))))
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{number}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...', "
                                 f"got {line!r}") from None
    elif path.is_dir() or path.name.startswith("cameras."):
        from ..geometry.poses import find_colmap_model

        model = _pycolmap("reading COLMAP cameras").Reconstruction(
            str(find_colmap_model(path if path.is_dir() else path.parent)))
        cameras = [(c.model.name, [float(v) for v in c.params], (c.width, c.height)) for c in model.cameras.values()]
    else:
        raise ValueError(f"camera file {path} does not exist or is not a COLMAP cameras.txt, cameras.bin or "
                         "model folder")
    if not cameras:
        raise ValueError(f"{path} holds no camera")
    if any(c != cameras[0] for c in cameras[1:]):
        raise ValueError(f"{path} holds {len(cameras)} different cameras: give one")
    return cameras[0]


# ----------------------------------------------------------------------------------------
# Database
# ----------------------------------------------------------------------------------------


def write_database(features_path: PathLike, matches_path: PathLike, database_path: PathLike,
                   pairs: Union[None, PathLike, Sequence[Pair]] = None,
                   camera_model: str = "SIMPLE_RADIAL", camera_mode: str = "auto",
                   camera_params: Optional[Sequence[float]] = None,
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
        camera_params: known intrinsics, COLMAP's parameter list of ``camera_model``
            (``f, cx, cy, k`` for ``SIMPLE_RADIAL``, ``fx, fy, cx, cy`` for ``PINHOLE``, ...; see
            :func:`read_camera_file`), given to every camera and marked as a prior (verification
            then fits essential matrices). None: COLMAP's defaults.
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
    if camera_params is not None:
        expected = pycolmap.Camera.create_from_model_name(0, camera_model, 1.0, 1, 1).params_info
        if len(camera_params) != len(expected.split(",")):
            raise ValueError(f"camera_params of a {camera_model} camera are {expected}: expected "
                             f"{len(expected.split(','))} numbers, got {len(camera_params)}")
        if not np.isfinite(np.asarray(camera_params, dtype=np.float64)).all():
            raise ValueError(f"camera_params must be finite numbers, got {list(camera_params)}")
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
    source = settings.get("source") if settings.get("source_kind") in ("folder", "sequence") else None
    source = None if source is None else Path(source)  # where the images are, for their EXIF

    counts: Dict[str, int] = {}

    def write(tmp: Path) -> None:
        with open_h5(matches_path, what="matches file") as mfile:
            if pairs is None:
                pair_list = _pairs_in_matches_file(mfile, names, matches_path)
            elif isinstance(pairs, (str, Path)):
                pair_list = read_pairs(pairs)
            else:
                pair_list = [tuple(p) for p in pairs]
            pair_list = _check_pairs(pair_list, images, features_path)
            counts.update(_fill_database(pycolmap, tmp, names, images, camera_of, camera_model, camera_params,
                                         source, pair_list, mfile, matches_path))
        if verify:
            counts.update(_verify(pycolmap, tmp, int(min_matches)))

    atomic_write(database_path, write)
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
        single = settings.get("source_kind") in SEQUENCE_KINDS and len(sizes) == 1
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


def exif_focal(pycolmap, image_path: Optional[Path], size: Tuple[int, int]) -> Optional[float]:
    """The focal length in px, at ``size`` (W, H), that the EXIF of an image file gives as
    COLMAP reads it (``pycolmap.infer_camera_from_image``), or None (no file, no EXIF focal)."""
    if image_path is None or not image_path.is_file():
        return None
    camera = pycolmap.infer_camera_from_image(str(image_path))
    if not camera.has_prior_focal_length:
        return None
    return float(camera.focal_length) * max(size) / max(camera.width, camera.height)


def _fill_database(pycolmap, path: Path, names: Sequence[str],
                   images: Dict[str, Tuple[np.ndarray, Tuple[int, int]]],
                   camera_of: Dict[str, int], camera_model: str,
                   camera_params: Optional[Sequence[float]], source: Optional[Path], pairs: Sequence[Pair],
                   mfile: Any, matches_path: Path) -> Dict[str, int]:
    """Cameras, rigs, images, frames, keypoints and raw matches into an empty database
    (``source``: the folder of the images, for their EXIF)."""
    counts = {"images": 0, "cameras": 0, "keypoints": 0, "pairs": 0, "matches": 0}
    with pycolmap.Database.open(str(path)) as db, pycolmap.DatabaseTransaction(db):
        cameras: Dict[int, Tuple[Any, int]] = {}  # camera index -> (Camera, rig id)
        image_ids: Dict[str, int] = {}
        for name in names:
            kpts, (width, height) = images[name]
            index = camera_of[name]
            if index not in cameras:
                focal = None if camera_params is not None else exif_focal(
                    pycolmap, None if source is None else source / name, (width, height))
                camera = pycolmap.Camera.create_from_model_name(
                    0, camera_model, focal or DEFAULT_FOCAL_FACTOR * max(width, height), width, height)
                camera.has_prior_focal_length = focal is not None
                if camera_params is not None:
                    camera.params = np.asarray(camera_params, dtype=np.float64)
                    camera.has_prior_focal_length = True
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
    with colmap_log():
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


def database_cameras(database_path: PathLike) -> List[Dict[str, Any]]:
    """The cameras of a database: ``camera_id``, ``model``, ``width``, ``height``, ``params``."""
    with _pycolmap().Database.open(str(database_path)) as db:
        return [{"camera_id": int(c.camera_id), "model": c.model.name, "width": int(c.width),
                 "height": int(c.height), "params": [float(v) for v in c.params]} for c in db.read_all_cameras()]


def self_calibrate(database_path: PathLike) -> Optional[float]:
    """A starting focal length for the one camera of a verified database, written into it as
    the camera's focal: :func:`~specglue.geometry.calibration.focal_from_fundamentals`, within
    :data:`PLAUSIBLE_FOCAL_RANGE`, on the fundamental matrices fitted (OpenCV's 8-point
    algorithm) to the inlier matches of every verified pair -- whatever model verification kept
    (a homography for the laparoscopic frames, a fundamental matrix for the sinus ones).

    Returns:
        the focal length in pixels, or None (database unchanged) when the pairs do not give one.

    Raises:
        ValueError: the database does not hold exactly one camera.
    """
    import cv2

    from ..geometry.calibration import focal_from_fundamentals

    pycolmap = _pycolmap()
    failed = {pycolmap.TwoViewGeometryConfiguration.UNDEFINED, pycolmap.TwoViewGeometryConfiguration.DEGENERATE}
    with pycolmap.Database.open(str(database_path)) as db:
        cameras = db.read_all_cameras()
        if len(cameras) != 1:
            raise ValueError(f"self-calibration needs a database with one camera, {database_path} has "
                             f"{len(cameras)}")
        camera = cameras[0]
        keypoints = {image.image_id: db.read_keypoints(image.image_id)[:, :2].astype(np.float64)
                     for image in db.read_all_images()}  # [N, 2] each
        fundamentals = []
        for pair_id, geometry in zip(*db.read_two_view_geometries()):
            inliers = geometry.inlier_matches  # [M, 2]
            if geometry.config in failed or len(inliers) < 8:
                continue
            id0, id1 = pycolmap.pair_id_to_image_pair(pair_id)
            F, _ = cv2.findFundamentalMat(keypoints[id0][inliers[:, 0]], keypoints[id1][inliers[:, 1]], cv2.FM_8POINT)
            if F is not None and F.shape == (3, 3):
                fundamentals.append(F)
        if not fundamentals:
            return None
        low, high = PLAUSIBLE_FOCAL_RANGE
        focal = focal_from_fundamentals(np.stack(fundamentals), (camera.principal_point_x, camera.principal_point_y),
                                        (low * camera.width, high * camera.width))
        if focal is None:
            return None
        camera.focal_length = focal
        db.update_camera(camera)
    logger.info("self-calibration of %s: focal %.0f px (%.2f x the width) from %d pairs", database_path, focal,
                focal / camera.width, len(fundamentals))
    return focal


# ----------------------------------------------------------------------------------------
# Mapping
# ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def colmap_log() -> Iterator[None]:
    """COLMAP's own log (glog, Ceres's too) at INFO while specglue's logger is enabled for INFO,
    else only its errors (restored on exit): its warnings are solver chatter ("Linear solver
    failure") that specglue's own checks turn into sentences."""
    glog = _pycolmap().logging
    previous = glog.minloglevel
    glog.minloglevel = glog.INFO if logging.getLogger("specglue").isEnabledFor(logging.INFO) else glog.ERROR
    try:
        yield
    finally:
        glog.minloglevel = previous


def map_database(database_path: PathLike, image_dir: Optional[PathLike], out_dir: PathLike,
                 options: Union[None, Dict[str, Any], Any] = None, mapper: str = "incremental"):
    """Mapping of a verified database; the largest model, written and returned.

    Layout: ``out_dir/sparse/`` holds the kept model in COLMAP's binary format
    (``cameras.bin``, ``images.bin``, ``points3D.bin``, ``rigs.bin``, ``frames.bin``),
    readable with ``pycolmap.Reconstruction(out_dir / "sparse")``; an existing ``sparse/``
    is replaced once the new one is written. Smaller models (disconnected parts of the
    collection) are logged and dropped.

    Args:
        image_dir: the image folder, used only for the colours of the points; None for grey
            points (no images read).
        options: ``pycolmap.IncrementalPipelineOptions`` (``GlobalPipelineOptions`` for the
            global mapper), used as given, or a dict of its fields (nested dicts for
            ``mapper`` / ``triangulation``) applied over the defaults here: ``random_seed`` =
            :data:`RANDOM_SEED`, so RANSAC and the other random choices repeat from run to run
            (with several threads, bundle adjustment of large problems may still differ in the
            last digits; ``num_threads=1`` for runs that repeat exactly).
        mapper: one of :data:`MAPPERS`.

    Returns:
        the kept ``pycolmap.Reconstruction``.

    Raises:
        ValueError: the database or image folder is missing, or the database holds no
            two-view geometry (write it with ``verify=True``).
        SpecglueError: mapping registered fewer than two images.
    """
    pycolmap = _pycolmap("mapping a COLMAP database")
    if mapper not in MAPPERS:
        raise ValueError(f"mapper must be one of {', '.join(MAPPERS)}, got {mapper!r}")
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

    options_type, run = {"incremental": (pycolmap.IncrementalPipelineOptions, pycolmap.incremental_mapping),
                         "global": (pycolmap.GlobalPipelineOptions, pycolmap.global_mapping)}[mapper]
    if isinstance(options, options_type):
        pipeline_options = options
    else:
        pipeline_options = options_type()
        pipeline_options.random_seed = RANDOM_SEED
        if image_dir is None and mapper == "incremental":
            pipeline_options.extract_colors = False
        if options:
            try:
                pipeline_options.mergedict(dict(options))
            except (AttributeError, TypeError) as err:
                raise ValueError(f"bad mapping options {options!r}: {err} (fields of "
                                 f"pycolmap.{options_type.__name__} expected)") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mapping-", dir=out_dir))
    try:
        # pycolmap checks that the image path is a folder even when it reads no image
        with colmap_log():
            models = run(str(database_path), str(image_dir if image_dir is not None else work),
                         str(work), pipeline_options)
        if not models:
            # COLMAP logs why: "No good initial image pair found" or "Discarding
            # reconstruction due to bad initial pair" (e.g. only two images, whose points are
            # all two-view tracks, which the default triangulation ignores)
            raise SpecglueError(
                f"mapping {database_path} failed: no model was kept from {num_images} images "
                f"({num_verified} verified pairs): no initial image pair with enough inliers "
                "and triangulation angle was found, or it was discarded (fewer than 2 images "
                "registered; see pycolmap's log)")
        sizes = {key: model.num_reg_images() for key, model in models.items()}
        best = max(sizes, key=lambda key: (sizes[key], -key))
        reconstruction = models[best]
        if sizes[best] < 2:
            raise SpecglueError(f"mapping {database_path} failed: fewer than 2 of {num_images} "
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
    logger.info("mapped %s (%s): %d of %d images registered, %d points, written to %s",
                database_path, mapper, reconstruction.num_reg_images(), num_images,
                reconstruction.num_points3D(), target)
    return reconstruction


# ----------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------


def registered_images(reconstruction) -> List[Any]:
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
        "registered_names": [image.name for image in registered_images(reconstruction)],
    }


def check_cameras(reconstruction, max_points: int = 5000) -> Dict[str, Any]:
    """Are a model's intrinsics and geometry plausible?

    Checks every camera of a registered image: its focal length against
    :data:`PLAUSIBLE_FOCAL_RANGE` (times the image width) and its radial distortion at the
    image corners against :data:`MAX_PLAUSIBLE_DISTORTION`; and the median triangulation angle
    of the 3D points (the largest angle between the rays of a point's track, over up to
    ``max_points`` points) against :data:`MIN_TRIANGULATION_DEG`.

    Returns:
        ``cameras``: per camera ``camera_id``, ``model``, ``width``, ``height``, ``params``,
        ``focal`` (px, the mean of fx and fy), ``focal_over_width``, ``corner_distortion``
        and ``images`` (registered images that use it); ``median_triangulation_deg``;
        ``warnings`` (sentences, each saying what is wrong and what to do); ``reliable``
        (no warning).
    """
    images = registered_images(reconstruction)
    users: Dict[int, int] = {}
    for image in images:
        users[image.camera_id] = users.get(image.camera_id, 0) + 1
    cameras, warnings = [], []
    low, high = PLAUSIBLE_FOCAL_RANGE
    for camera_id in sorted(users):
        camera = reconstruction.cameras[camera_id]
        focal = float(camera.mean_focal_length())
        distortion = _corner_distortion(camera)
        cameras.append({"camera_id": int(camera_id), "model": camera.model.name, "width": int(camera.width),
                        "height": int(camera.height), "params": [float(v) for v in camera.params],
                        "focal": focal, "focal_over_width": focal / camera.width,
                        "corner_distortion": distortion, "images": users[camera_id]})
        if not low <= focal / camera.width <= high:
            warnings.append(
                f"camera {camera_id}: focal length {focal:.0f} px is {focal / camera.width:.2f} x the image width, "
                f"outside the plausible {low}-{high} x: the focal was not constrained by the views. Give the "
                "intrinsics (--camera-params), or one camera for frames of one video (--camera-mode single)")
        if not distortion <= MAX_PLAUSIBLE_DISTORTION:
            warnings.append(
                f"camera {camera_id}: radial distortion moves the image corners by {distortion:.0%} of their "
                f"radius (plausible: up to {MAX_PLAUSIBLE_DISTORTION:.0%}). Give the intrinsics "
                "(--camera-params), or a model without distortion (--camera-model SIMPLE_PINHOLE)")
    angle = _median_triangulation_deg(reconstruction, max_points)
    if not angle >= MIN_TRIANGULATION_DEG:
        warnings.append(
            f"the 3D points are seen under a median triangulation angle of {angle:.2f} degrees (reliable from "
            f"{MIN_TRIANGULATION_DEG}): the cameras barely move relative to the scene, so depths and focal "
            "length are guesses. Use frames further apart (--every N) or a longer stretch of the sequence")
    return {"cameras": cameras, "median_triangulation_deg": angle, "warnings": warnings,
            "reliable": not warnings}


def _corner_distortion(camera) -> float:
    """How far the camera's distortion moves the image corners, relative to their distance
    from the principal point (0 without distortion; inf when it folds them back)."""
    width, height = camera.width, camera.height
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], dtype=np.float64)  # [4, 2]
    K = np.asarray(camera.calibration_matrix(), dtype=np.float64)
    rays = np.c_[(corners - K[:2, 2]) / np.diag(K)[:2], np.ones(4)]  # [4, 3], undistorted
    projected = np.asarray(camera.img_from_cam(rays), dtype=np.float64)  # [4, 2]
    radius = np.linalg.norm(corners - K[:2, 2], axis=1)
    moved = np.linalg.norm(projected - corners, axis=1) / np.maximum(radius, 1e-9)
    return float(moved.max()) if np.isfinite(moved).all() else float("inf")


def _median_triangulation_deg(reconstruction, max_points: int) -> float:
    """The median over (up to ``max_points``, evenly picked) 3D points of the largest angle
    between two rays of a point's track, in degrees; nan without points."""
    centres = {image_id: np.asarray(reconstruction.image(image_id).projection_center())
               for image_id in reconstruction.reg_image_ids()}
    points = list(reconstruction.points3D.values())
    if not points:
        return float("nan")
    angles = []
    for point in points[::max(1, len(points) // max_points)]:
        rays = np.stack([centres[el.image_id] for el in point.track.elements]) - point.xyz  # [T, 3]
        rays /= np.maximum(np.linalg.norm(rays, axis=1, keepdims=True), 1e-12)
        angles.append(np.degrees(np.arccos(np.clip((rays @ rays.T).min(), -1.0, 1.0))))
    return float(np.median(angles))


__all__ = [
    "CAMERA_MODES",
    "MAPPERS",
    "MAX_PLAUSIBLE_DISTORTION",
    "MIN_TRIANGULATION_DEG",
    "PLAUSIBLE_FOCAL_RANGE",
    "SEQUENCE_KINDS",
    "camera_models",
    "check_cameras",
    "colmap_log",
    "database_cameras",
    "map_database",
    "read_camera_file",
    "registered_images",
    "self_calibrate",
    "summarize",
    "write_database",
]
