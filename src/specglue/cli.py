"""The ``specglue`` command line: argument parsing and output only; the work is in the library.

Subcommands: ``match``, ``detect-specular``, ``demo``, ``pairs``, ``extract``, ``match-pairs``,
``colmap``, ``reconstruct``, ``view``, ``eval``, ``export-onnx``
(``specglue <command> --help`` for each).
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .atomic import atomic_write, atomic_write_text
from .confs import DEFAULT_PRESET, MAX_KEYPOINTS, PIPELINE_SPECULAR_MODE, PRESET_NAMES, RESIZE, SPECULAR_MODES
from .errors import SpecglueError
from .optional import MissingDependency


class CliError(SpecglueError):
    """A user error reported as one line on stderr with exit code 1."""


def _check_output(path: Optional[str], suffixes: tuple, flag: str) -> Optional[Path]:
    if path is None:
        return None
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise CliError(f"{flag} must end in {' or '.join(suffixes)}, got {out.name}")
    return out


def cmd_match(args: argparse.Namespace) -> int:
    from .images import load_image
    from .pipeline import match_pair
    from .presets import FROM_PRESET

    out_path = _check_output(args.out, (".npz", ".json"), "--out")
    viz_path = _check_output(args.viz, (".png",), "--viz")
    given = args.mask0 is not None or args.mask1 is not None
    if args.specular == "none" and given:
        raise CliError("--specular none contradicts --mask0/--mask1")
    specular = None if args.specular == "none" else (args.mask0, args.mask1) if given else "auto"
    image0, image1 = load_image(args.image0, "image0"), load_image(args.image1, "image1")
    extractor_conf = {} if args.keypoint_floor is None else {"keypoint_floor": args.keypoint_floor}
    roi = None if args.roi == "none" else args.roi
    result = match_pair(image0, image1, features=args.features, specular=specular,
                        specular_mode=args.specular_mode, roi=roi, geometry=args.geometry, preset=args.preset,
                        max_num_keypoints=args.max_keypoints,
                        resize=FROM_PRESET if args.resize is None else args.resize or None,
                        upsample=args.upsample, extractor_conf=extractor_conf, detector=args.detector,
                        weights=args.weights, rotations=args.rotations)
    summary = result.summary()
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    if out_path is not None:
        if out_path.suffix.lower() == ".npz":
            atomic_write(out_path, lambda tmp: np.savez_compressed(tmp, **result.to_arrays()))
        else:
            atomic_write_text(out_path, json.dumps(result.to_json()))
        print(f"wrote {out_path}")
    if viz_path is not None:
        _plot(result, image0, image1, viz_path, caption=f"{args.features}, specular "
              f"{args.specular_mode if specular is not None else 'none (no masks)'}")
        print(f"wrote {viz_path}")
    return 0


def _plot(result, image0: np.ndarray, image1: np.ndarray, path: Path, caption: str) -> None:
    from .viz import plot_matches

    inliers = result.geometry.inliers if result.geometry is not None else None
    plot_matches(image0, image1, result.keypoints0, result.keypoints1,
                 result.matches, scores=result.scores, inliers=inliers, mask0=result.mask0,
                 mask1=result.mask1, caption=caption, path=path, stop_layer=result.stop)


def cmd_detect(args: argparse.Namespace) -> int:
    from .images import load_image
    from .specular import detect, write_mask

    out = _check_output(args.out, (".png",), "--out")
    params = {"dilate": args.dilate} if args.dilate else {}
    mask = detect(load_image(args.image, "IMG"), method=args.method, **params)
    write_mask(out, mask)
    print(f"specular pixels: {int(mask.sum())} of {mask.size} ({mask.mean():.2%}); wrote {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    table = run_demo(Path(args.out), features=args.features, seed=args.seed)
    print(table)
    print(f"wrote {args.out}")
    return 0


def cmd_pairs(args: argparse.Namespace) -> int:
    from .collection import pairs as pair_lists

    names = pair_lists.image_names(args.source)
    if args.mode == "exhaustive":
        pairs = pair_lists.exhaustive_pairs(names)
    elif args.mode == "sequential":
        pairs = pair_lists.sequential_pairs(names, args.window, args.quadratic, args.loop_every)
    else:
        if args.pairs is None:
            raise CliError("--mode from needs --pairs PAIRS.txt")
        pairs = pair_lists.read_pairs(args.pairs, known=names)
    pair_lists.write_pairs(pairs, args.out)
    print(f"{len(pairs)} pairs of {len(names)} images; wrote {args.out}")
    return 0


def _engine(args: argparse.Namespace):
    from .collection.engine import make_engine

    return make_engine(args.engine, address=args.address, num_workers=args.workers)


def _extraction_settings(args: argparse.Namespace):
    from .collection.extract import ExtractionSettings
    from .presets import FROM_PRESET, resolve_preset

    specular = args.specular if args.specular in ("auto", "none") else "masks"
    conf = {} if args.keypoint_floor is None else {"keypoint_floor": args.keypoint_floor}
    resize = FROM_PRESET if args.resize is None else args.resize or None
    preset = resolve_preset(args.preset, args.max_keypoints, resize)
    settings = ExtractionSettings.from_preset(preset, features=args.features, extractor_conf=conf, specular=specular,
                                              detector=args.detector, roi=args.roi)
    return settings, (None if specular != "masks" else Path(args.specular))


def cmd_extract(args: argparse.Namespace) -> int:
    from .collection.extract import extract_features

    settings, masks_dir = _extraction_settings(args)
    engine = _engine(args)
    try:
        summary = extract_features(args.source, args.out, settings, masks_dir=masks_dir, every=args.every,
                                   overwrite=args.overwrite, engine=engine)
    finally:
        engine.close()
    print(f"{summary['images']} images in {args.out} ({summary['extracted']} extracted, "
          f"{summary['skipped']} already there; {summary['mean_keypoints']:.0f} keypoints per new image)")
    return 0


def cmd_match_pairs(args: argparse.Namespace) -> int:
    from .collection.match import MatchSettings, match_pairs

    settings = MatchSettings.from_preset(args.preset, features=args.features, weights=args.weights,
                                         specular_mode=args.specular_mode)
    engine = _engine(args)
    try:
        summary = match_pairs(args.features_file, args.pairs, args.out, settings=settings,
                              batch_size=args.batch_size, overwrite=args.overwrite, engine=engine)
    finally:
        engine.close()
    print(f"{summary['pairs']} pairs in {args.out} ({summary['matched']} matched at "
          f"{summary['pairs_per_second']:.1f} pairs/s, {summary['skipped']} already there; "
          f"{summary['mean_matches']:.0f} matches per new pair)")
    return 0


def cmd_colmap(args: argparse.Namespace) -> int:
    from .collection.colmap import write_database

    counts = write_database(args.features_file, args.matches_file, args.database, pairs=args.pairs,
                            camera_model=args.camera_model, camera_mode=args.camera_mode,
                            verify=args.verify, overwrite=args.overwrite)
    verified = (f", {counts['verified_pairs']} verified pairs with {counts['inlier_matches']} inlier matches"
                if args.verify else "")
    print(f"wrote {args.database}: {counts['images']} images, {counts['cameras']} cameras, "
          f"{counts['keypoints']} keypoints, {counts['pairs']} pairs with {counts['matches']} matches{verified}")
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from .collection.match import MatchSettings
    from .collection.reconstruct import reconstruct

    extraction, masks_dir = _extraction_settings(args)
    matching = MatchSettings.from_preset(args.preset, features=args.features, specular_mode=args.specular_mode)
    engine = _engine(args)
    try:
        summary = reconstruct(args.source, args.out, extraction, matching, masks_dir=masks_dir,
                              every=args.every, pairs=args.pairs, window=args.window,
                              camera_model=args.camera_model, camera_mode=args.camera_mode,
                              camera_params=_camera_params(args.camera_params),
                              refine_distortion=args.refine_distortion, mapping=args.mapping, mapper=args.mapper,
                              ground_truth=args.gt, engine=engine)
    finally:
        engine.close()
    print(f"registered {summary['registered_images']} of {summary['images_total']} images, "
          f"{summary['points3D']} 3D points, mean track length {summary['mean_track_length']:.2f}, "
          f"mean reprojection error {summary['mean_reprojection_error']:.2f} px")
    start = {c["camera_id"]: c for c in summary["intrinsics"]["start"]}
    for camera in summary["cameras_checked"][:3]:
        before = start.get(camera["camera_id"], {}).get("params")
        print(f"camera {camera['camera_id']} ({camera['model']}, {camera['images']} images): "
              f"{_params(before)} -> {_params(camera['params'])}, focal {camera['focal_over_width']:.2f} x width")
    if len(summary["cameras_checked"]) > 3:
        print(f"... and {len(summary['cameras_checked']) - 3} more cameras (summary.json)")
    if summary["trajectory"] is not None:
        _print_trajectory(summary["trajectory"])
    for warning in summary["warnings"]:
        print(f"UNRELIABLE: {warning}", file=sys.stderr)
    print(f"wrote {args.out}/sparse, {args.out}/summary.json, {summary['files']['picture']} and "
          f"{summary['files']['page']}")
    return 0


def _params(values: Optional[List[float]]) -> str:
    return "?" if values is None else "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _camera_params(value: Optional[str]):
    """``--camera-params``: comma-separated numbers, or a COLMAP cameras file or model folder."""
    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        if not Path(value).exists():
            raise CliError(f"--camera-params: {value!r} is neither comma-separated numbers nor an existing "
                           "COLMAP cameras.txt / model folder") from None
        return Path(value)


def _print_trajectory(trajectory: dict) -> None:
    focal = trajectory["focal_error"]
    print(f"against the ground truth: {trajectory['registered']}/{trajectory['images']} registered, "
          f"ATE {100 * trajectory['ate_relative']:.2f} % of the path, rotation error median "
          f"{trajectory['rotation_error_deg']['median']:.2f} deg, relative rotation error median "
          f"{trajectory['rpe_rotation_deg']['median']:.3f} deg"
          + ("" if focal is None else f", focal error {100 * focal['mean']:.1f} %"))


def cmd_view(args: argparse.Namespace) -> int:
    from .collection.view import view_model

    page = view_model(args.model, args.out, ground_truth=args.gt)
    print(f"wrote {page}")
    return 0


def cmd_trajectory(args: argparse.Namespace) -> int:
    from .geometry.poses import read_colmap_poses, read_sequence_poses
    from .geometry.trajectory import evaluate_trajectory

    estimate, truth = read_colmap_poses(args.model), read_sequence_poses(args.gt)
    names = [n for n in truth.names if n in estimate.T_cam_from_world] if args.registered_only else None
    trajectory = evaluate_trajectory(estimate, truth, names)
    _print_trajectory(trajectory)
    if args.out:
        from .eval.report import write_json

        write_json(trajectory, args.out)
        print(f"wrote {args.out}")
    return 0


def _add_camera_arguments(parser: argparse.ArgumentParser) -> None:
    from .collection.colmap import CAMERA_MODES

    parser.add_argument("--camera-model", default="SIMPLE_RADIAL",
                        help="COLMAP camera model (default: SIMPLE_RADIAL)")
    parser.add_argument("--camera-mode", default="auto", choices=CAMERA_MODES,
                        help="auto: one shared camera for a video or a folder of numbered frames, one per image "
                             "otherwise (default); single: one for all; per-image")


def _add_preset_argument(parser: argparse.ArgumentParser, applies: str) -> None:
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESET_NAMES,
                        help=f"speed preset (default: {DEFAULT_PRESET}; fast: the matcher in int8 or bf16 as the CPU "
                             f"allows; realtime: 512 keypoints at 640 px; docs/speed.md): {applies}")


def _add_keypoint_arguments(parser: argparse.ArgumentParser, preset_applies: str) -> None:
    """The extraction options every command that extracts shares (match, extract, reconstruct),
    with ``--preset``, whose keypoint budget and size apply unless given."""
    from .features import EXTRACTORS
    from .specular.detect import METHOD_DEFAULTS, DEFAULT_METHOD

    parser.add_argument("--features", default="aliked", choices=sorted(EXTRACTORS),
                        help="keypoint detector/descriptor (default: aliked)")
    _add_preset_argument(parser, preset_applies)
    parser.add_argument("--max-keypoints", type=int, default=None,
                        help=f"keypoints per image (default: the preset's, {MAX_KEYPOINTS})")
    parser.add_argument("--resize", type=int, default=None,
                        help=f"shrink images whose long side exceeds this many px before extraction; 0 = never "
                             f"(default: the preset's, {RESIZE}; keypoints are reported in the images' own pixels)")
    parser.add_argument("--keypoint-floor", type=float, metavar="F",
                        help="when the detection threshold keeps fewer than F x --max-keypoints keypoints, take "
                             "the strongest instead (default: the extractor's, 0.25; 0 = official "
                             "threshold-only detection; aliked, disk, superpoint)")
    parser.add_argument("--detector", default=DEFAULT_METHOD, choices=sorted(METHOD_DEFAULTS),
                        help=f"highlight detector of --specular auto (default: {DEFAULT_METHOD})")
    parser.add_argument("--roi", default="auto", metavar="auto|none|MASK.png",
                        help="where keypoints are detected (an endoscope's field of view): auto: estimated from "
                             "the images, none for ordinary photos (default); none: everywhere; MASK.png: given "
                             "(non-zero inside)")


def _add_specular_mode_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--specular-mode", default=PIPELINE_SPECULAR_MODE, choices=SPECULAR_MODES,
                        help=f"how the matcher uses the highlight masks (default: {PIPELINE_SPECULAR_MODE})")


def _add_extraction_arguments(parser: argparse.ArgumentParser, preset_applies: str) -> None:
    """The options of the commands that extract a whole collection (extract, reconstruct)."""
    _add_keypoint_arguments(parser, preset_applies)
    parser.add_argument("--specular", default="auto", metavar="auto|none|MASKS_DIR",
                        help="auto: detect highlight masks (default); none: no masks; MASKS_DIR: one PNG "
                             "per image, MASKS_DIR/<image name>.png")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="video: keep every N-th frame")


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process (default); ray: Ray workers (needs specglue[ray])")
    parser.add_argument("--address", metavar="ADDR",
                        help="ray: an existing cluster (e.g. auto or ray://head:10001); default: a local Ray")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="ray: workers, one CPU each (default: every CPU)")


def _add_collection_commands(sub: argparse._SubParsersAction) -> None:
    from .collection.colmap import MAPPERS
    from .features import EXTRACTORS

    extract = sub.add_parser(
        "extract", help="extract features of an image folder or a video (hloc features .h5)",
        description="Extract keypoints, descriptors and per-keypoint specularity of every image of a "
                    "folder (recursive) or every N-th frame of a video into an HDF5 file in hloc's "
                    "layout. Resumable: images already in the file are skipped.",
        epilog="example: specglue extract frames/ --out features.h5")
    extract.add_argument("source", metavar="IMAGES_DIR_OR_VIDEO")
    extract.add_argument("--out", required=True, type=Path, metavar="FEATURES.h5")
    _add_extraction_arguments(extract, "its keypoint budget and size")
    extract.add_argument("--overwrite", action="store_true", help="extract every image again")
    _add_engine_arguments(extract)
    extract.set_defaults(func=cmd_extract)

    match = sub.add_parser(
        "match-pairs", help="match the pairs of a pairs file (hloc matches .h5)",
        description="Match every pair of PAIRS.txt with LightGlue into an HDF5 file in hloc's layout "
                    "(matches0 / matching_scores0 per pair). Resumable and crash-safe: a rerun matches "
                    "only the pairs the file lacks.",
        epilog="example: specglue match-pairs features.h5 pairs.txt --out matches.h5")
    match.add_argument("features_file", type=Path, metavar="FEATURES.h5")
    match.add_argument("pairs", type=Path, metavar="PAIRS.txt")
    match.add_argument("--out", required=True, type=Path, metavar="MATCHES.h5")
    match.add_argument("--features", choices=sorted(EXTRACTORS),
                       help="the matcher's feature type (default: the extractor recorded in FEATURES.h5)")
    match.add_argument("--weights", metavar="PATH", help="a matcher checkpoint instead of the official weights")
    _add_specular_mode_argument(match)
    _add_preset_argument(match, "its matcher precision and exits")
    match.add_argument("--batch-size", type=int, default=8, help="pairs per matcher call (default: 8)")
    match.add_argument("--overwrite", action="store_true", help="match every pair again")
    _add_engine_arguments(match)
    match.set_defaults(func=cmd_match_pairs)

    colmap = sub.add_parser(
        "colmap", help="write a COLMAP database from features and matches (needs specglue[colmap])",
        description="Write the cameras, images, keypoints and matches of FEATURES.h5 and MATCHES.h5 "
                    "into a COLMAP database through pycolmap; --verify adds the two-view geometries "
                    "that mapping needs.",
        epilog="example: specglue colmap features.h5 matches.h5 --database sfm.db --verify")
    colmap.add_argument("features_file", type=Path, metavar="FEATURES.h5")
    colmap.add_argument("matches_file", type=Path, metavar="MATCHES.h5")
    colmap.add_argument("--database", required=True, type=Path, metavar="OUT.db")
    colmap.add_argument("--pairs", type=Path, metavar="PAIRS.txt", help="import only these pairs (default: all)")
    colmap.add_argument("--verify", action="store_true", help="geometric verification (two-view geometries)")
    colmap.add_argument("--overwrite", action="store_true", help="replace an existing database")
    _add_camera_arguments(colmap)
    colmap.set_defaults(func=cmd_colmap)

    rec = sub.add_parser(
        "reconstruct", help="images or a video to a COLMAP sparse model (needs specglue[colmap])",
        description="The whole chain: extract, pairs, match-pairs, COLMAP database with verification, "
                    "incremental mapping. Writes OUT/sparse (COLMAP model), OUT/summary.json and "
                    "OUT/reconstruction.png (3D and three orthogonal views), OUT/model.html (interactive 3D). "
                    "Frames of one video get one camera whose intrinsics are checked. Rerunning reuses the "
                    "features and matches already computed.",
        epilog="example: specglue reconstruct video.mp4 --out rec/ --every 2")
    rec.add_argument("source", metavar="IMAGES_DIR_OR_VIDEO")
    rec.add_argument("--out", required=True, type=Path, metavar="DIR")
    _add_extraction_arguments(rec, "keypoints, size, matcher precision and exits")
    _add_specular_mode_argument(rec)
    rec.add_argument("--pairs", default="auto", choices=("auto", "exhaustive", "sequential"),
                     help="auto: every pair up to 40 images, else sequential (default)")
    rec.add_argument("--window", type=int, default=10, help="sequential: frames after each frame (default: 10)")
    rec.add_argument("--mapping", default="auto", choices=("auto", "photos", "video"),
                     help="mapping preset: photos (COLMAP's defaults) or video (small baselines: lower "
                          "triangulation angles, one camera, focal self-calibrated, distortion held); auto: video "
                          "for a video file or a folder of numbered frames, photos for other folders (default)")
    rec.add_argument("--mapper", default="incremental", choices=MAPPERS,
                     help="incremental: COLMAP's incremental mapper (default); global: global SfM (GLOMAP)")
    _add_camera_arguments(rec)
    rec.add_argument("--camera-params", metavar="P1,P2,...|CAMERAS",
                     help="known intrinsics, held fixed: COLMAP's parameter list of --camera-model (SIMPLE_RADIAL: "
                          "f,cx,cy,k; PINHOLE: fx,fy,cx,cy) or a COLMAP cameras.txt / model folder (its model is used)")
    rec.add_argument("--refine-distortion", action="store_true",
                     help="video preset: let bundle adjustment refine the distortion too (default: held at 0; "
                          "small baselines do not constrain it)")
    rec.add_argument("--gt", type=Path, metavar="POSES",
                     help="known poses of the images (COLMAP model or endoscopy motion.yaml folder): measure the "
                          "trajectory against them (summary.json 'trajectory') and draw them beside the estimate")
    _add_engine_arguments(rec)
    rec.set_defaults(func=cmd_reconstruct)

    view = sub.add_parser(
        "view", help="an interactive 3D page of a COLMAP model (needs specglue[colmap])",
        description="Write a self-contained HTML page (no network) showing the model's points in their colours "
                    "and its cameras as frusta along the trajectory; drag to orbit, wheel to zoom.",
        epilog="example: specglue view rec/ --gt poses/")
    view.add_argument("model", type=Path, metavar="MODEL_DIR", help="a COLMAP model, or a folder with sparse/")
    view.add_argument("--out", type=Path, metavar="PAGE.html", help="default: MODEL_DIR/model.html")
    view.add_argument("--gt", type=Path, metavar="POSES",
                      help="known poses (COLMAP model or endoscopy layout), drawn aligned beside the estimate")
    view.set_defaults(func=cmd_view)


def build_parser() -> argparse.ArgumentParser:
    from .specular.detect import METHOD_DEFAULTS, DEFAULT_METHOD

    parser = argparse.ArgumentParser(
        prog="specglue",
        description="LightGlue keypoint matching that ignores specular highlights (glare). "
                    "Matches two images, detects highlight masks, evaluates and exports.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument("--num-threads", type=int, metavar="N",
                        help="torch CPU threads (default: torch's choice)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    match = sub.add_parser(
        "match", help="match two images",
        description="Extract features in IMG0 and IMG1, match them with LightGlue (official weights), "
                    "keep keypoints on specular highlights out of the matching, and optionally verify "
                    "the matches with a robust homography or fundamental matrix. Prints the counts.",
        epilog="example: specglue match a.png b.png --geometry homography --viz matches.png",
    )
    match.add_argument("image0", metavar="IMG0", help="first image (any format OpenCV reads)")
    match.add_argument("image1", metavar="IMG1", help="second image")
    _add_keypoint_arguments(match, "keypoints, size, matcher precision and exits")
    match.add_argument("--upsample", action="store_true",
                       help="also enlarge smaller images to --resize (the official LightGlue behaviour)")
    match.add_argument("--mask0", metavar="PNG", help="specular mask of IMG0 (non-zero = highlight)")
    match.add_argument("--mask1", metavar="PNG", help="specular mask of IMG1")
    match.add_argument("--specular", default="auto", choices=("auto", "none"),
                       help="auto: detect highlight masks where --mask0/--mask1 give none (default); "
                            "none: no masks")
    _add_specular_mode_argument(match)
    match.add_argument("--geometry", choices=("homography", "fundamental"),
                       help="verify the matches with OpenCV USAC MAGSAC++ and report inliers")
    match.add_argument("--weights", metavar="NAME|PATH",
                       help="matcher weights: a registry name or a checkpoint file (default: the official "
                            "weights of --features); aliked_rot: rotation-aware, on ALIKED-n16rot features; "
                            "aliked_endo: fine-tuned for endoscopy")
    match.add_argument("--rotations", type=_turns, default=(0,), metavar="0,180",
                       help="also match IMG1 turned by these angles (multiples of 90) and keep the turn with "
                            "the most matches (default: 0); 0,180 with --weights aliked_rot: any in-plane angle")
    match.add_argument("--out", metavar="FILE", help="save the results (.npz arrays or .json)")
    match.add_argument("--viz", metavar="FILE.png", help="draw the matches and masks")
    match.set_defaults(func=cmd_match)

    detect = sub.add_parser(
        "detect-specular", help="write a specular-highlight mask of an image",
        description="Detect specular highlights (glare) in IMG and write a black/white PNG mask.")
    detect.add_argument("image", metavar="IMG")
    detect.add_argument("--out", required=True, metavar="MASK.png", help="output mask (0 / 255)")
    detect.add_argument("--method", default=DEFAULT_METHOD, choices=sorted(METHOD_DEFAULTS),
                        help=f"detection rule (default: {DEFAULT_METHOD})")
    detect.add_argument("--dilate", type=int, default=0, help="grow the mask by this many px")
    detect.set_defaults(func=cmd_detect)

    demo = sub.add_parser(
        "demo", help="run the demo on a scikit-image sample photo",
        description="Warp a scikit-image sample photo by a random homography, add camera-fixed "
                    "synthetic highlights to both views, match with and without specular masks, "
                    "print a table and draw the picture.")
    demo.add_argument("--out", default="outputs/demo.png", metavar="FILE.png")
    demo.add_argument("--features", default="aliked", choices=("aliked", "disk"))
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)

    pairs = sub.add_parser(
        "pairs", help="list the image pairs to match (hloc pairs file)",
        description="Write a pairs file (one 'name0 name1' per line) for the images of a folder or a "
                    "features file: every pair, sequential windows for video, or a checked copy of a "
                    "given pairs file.",
        epilog="example: specglue pairs frames/ --mode sequential --window 5 --quadratic --out pairs.txt")
    pairs.add_argument("source", metavar="IMAGES_OR_FEATURES", help="image folder or features .h5")
    pairs.add_argument("--mode", choices=("exhaustive", "sequential", "from"), default="exhaustive",
                       help="exhaustive (default), sequential (video) or from --pairs")
    pairs.add_argument("--window", type=int, default=5, help="sequential: frames after each frame (default: 5)")
    pairs.add_argument("--quadratic", action="store_true",
                       help="sequential: also frames i + 2^k beyond the window")
    pairs.add_argument("--loop-every", type=int, metavar="N",
                       help="sequential: pair every N-th frame with all other N-th frames (loop closure)")
    pairs.add_argument("--pairs", type=Path, metavar="PAIRS.txt", help="the pairs file of --mode from")
    pairs.add_argument("--out", required=True, type=Path, metavar="PAIRS.txt", help="output pairs file")
    pairs.set_defaults(func=cmd_pairs)

    _add_collection_commands(sub)
    _add_eval_commands(sub)
    _add_train_command(sub)
    from .export import onnx as onnx_export
    from .model.lightglue import LightGlue

    export = sub.add_parser("export-onnx", help="export the matcher to a fixed-depth ONNX graph",
                            description=onnx_export.__doc__.split("\n\n")[0])
    export.add_argument("--features", required=True, choices=sorted(LightGlue.features),
                        help="feature type whose official LightGlue weights are exported")
    export.add_argument("output", type=Path, help="the .onnx file to write")
    export.add_argument("--with-specular", action="store_true",
                        help="add specularity0/specularity1 inputs [B, M]/[B, N] (hard mode)")
    export.add_argument("--opset", type=int, default=onnx_export.MIN_OPSET,
                        help=f"ONNX opset (>= {onnx_export.MIN_OPSET})")
    export.set_defaults(func=cmd_export_onnx)
    return parser


def _turns(text: str) -> tuple:
    """``--rotations``: comma-separated multiples of 90 degrees."""
    from .pipeline import check_turns

    try:
        return check_turns([int(v) for v in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected distinct multiples of 90 in [0, 360) such as 0,180, "
                                         f"got {text!r}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from .train import load_config, train
    from .train.config import dump_config

    conf = load_config(args.config, args.overrides)
    if args.print_config:
        print(dump_config(conf), end="")
        return 0
    if args.export is not None:
        from .train import export_weights

        print(f"wrote {export_weights(conf, args.export)}")
        return 0
    train(conf)
    return 0


def _add_train_command(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train", help="train or fine-tune the matcher from a YAML config",
        description="Train LightGlue (glue-factory's recipe) on homography pairs of any image folder or on "
                    "pairs with depth and poses, with synthetic highlights and their masks. Overrides are "
                    "dotted key=value pairs (optim.lr=3e-4). A run whose run.output holds a checkpoint "
                    "continues from it. Several processes: torchrun --nproc-per-node N -m specglue.cli "
                    "train CONFIG.yaml (needs specglue[train]).")
    train.add_argument("config", type=Path, metavar="CONFIG.yaml", help="the run's config (see configs/)")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. optim.steps=100 run.output=out")
    train.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    train.add_argument("--export", type=Path, metavar="WEIGHTS.pth",
                       help="write the run's best weights as an fp16 state dict (how specglue ships them) and exit")
    train.set_defaults(func=cmd_train)


def _add_eval_options(parser: argparse.ArgumentParser, benchmark: Any) -> None:
    """The options every benchmark takes, then the benchmark's own (their ``dest`` are its
    ``prepare``'s keywords)."""
    from .confs import EVAL_MAX_KEYPOINTS, EVAL_RESIZE
    from .eval.data import SPECULAR_PLACEMENTS
    from .eval.methods import DEFAULT_METHODS, METHOD_NAMES

    parser.add_argument("--features", default="aliked", help="extractor + LightGlue preset (default: aliked)")
    parser.add_argument("--methods", nargs="+", default=None, choices=METHOD_NAMES, metavar="METHOD",
                        help=f"methods to compare (default: {' '.join(DEFAULT_METHODS)}); "
                             f"any of {', '.join(METHOD_NAMES)}")
    parser.add_argument("--synthetic-highlights", dest="specular", choices=("none",) + SPECULAR_PLACEMENTS,
                        default="none", help="synthetic highlights on both images (default: none)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the pairs and highlights (default: 0)")
    parser.add_argument("--max-keypoints", type=int, default=EVAL_MAX_KEYPOINTS,
                        help=f"keypoints per image (default: {EVAL_MAX_KEYPOINTS})")
    parser.add_argument("--resize", type=int, default=EVAL_RESIZE,
                        help=f"long side in px, 0 keeps the size (default: {EVAL_RESIZE})")
    parser.add_argument("--ransac-threshold", type=float, default=None,
                        help=f"robust estimator threshold in px (default: {benchmark.ransac_threshold:g})")
    parser.add_argument("--out-dir", type=Path, default=None, help="output folder (default: outputs/eval/<settings>)")
    parser.add_argument("--overwrite", action="store_true", help="recompute instead of resuming from the caches")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--mnn-ratio", type=float, default=0.8, help="ratio test of the mnn baseline (default: 0.8)")
    parser.add_argument("--weights", default=None, metavar="NAME|PATH",
                        help="specglue-* methods: a registry name (aliked_rot: also sets --variant aliked-n16rot) "
                             "or a matcher checkpoint (e.g. from specglue train) instead of the official weights")
    parser.add_argument("--variant", default=None, metavar="NAME",
                        help="extractor weights variant (ALIKED model_name, e.g. aliked-n16rot); default: the "
                             "extractor's own")
    parser.add_argument("--bf16", action="store_true",
                        help="LightGlue(mp=True) for every LightGlue: bf16 autocast for specglue-* on a CPU with "
                             "native bf16 (fp32 on others), fp16 on CUDA (the official and kornia models autocast "
                             "on CUDA only)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default=None,
                        help="specglue-* methods: the matcher precision and exit thresholds of this speed preset on "
                             "--device (the keypoints and size stay the benchmark's; specglue.presets)")
    _BENCHMARK_OPTIONS[benchmark.name](parser.add_argument_group(f"{benchmark.name} options"))


def _homography_options(parser: Any) -> None:
    parser.add_argument("--images", dest="images_dir", type=Path, default=None, metavar="DIR",
                        help="folder of images (recursive); default: the shared photos in ../shared/data")
    parser.add_argument("--num-homographies", "-k", type=int, default=2, help="warps per image (default: 2)")
    parser.add_argument("--max-images", type=int, default=None, help="use only the first N images")


def _hpatches_options(parser: Any) -> None:
    parser.add_argument("root", type=Path, help="a sequence folder or a folder of sequences")


def _pose_options(parser: Any) -> None:
    parser.add_argument("pairs_file", type=Path, metavar="PAIRS", help="SuperGlue pairs_with_gt file")
    parser.add_argument("--images", dest="images_dir", type=Path, default=None, metavar="DIR",
                        help="folder the image names are relative to (default: <pairs dir>/images)")


def _rotation_options(parser: Any) -> None:
    parser.add_argument("--images", dest="images_dir", type=Path, default=None, metavar="DIR",
                        help="folder of images (recursive); default: the shared photos in ../shared/data")
    parser.add_argument("--per-bin", type=int, default=1, help="rotations per image and 30-degree bin (default: 1)")
    parser.add_argument("--max-images", type=int, default=None, help="use only the first N images")


def _sequence_pose_options(parser: Any) -> None:
    from .eval.benchmarks.sequence_pose import DEFAULT_GAPS, HIGHLIGHTS
    from .specular.detect import DEFAULT_METHOD, METHOD_DEFAULTS

    parser.add_argument("images_dir", type=Path, metavar="IMAGES_DIR", help="folder of the frames")
    parser.add_argument("--gt", type=Path, required=True, metavar="GT",
                        help="ground-truth poses: a COLMAP model folder (or one holding sparse/) or an endoscopy "
                             "structure-from-motion folder (motion.yaml)")
    parser.add_argument("--gaps", type=int, nargs="+", default=list(DEFAULT_GAPS), metavar="G",
                        help=f"frame gaps of the pairs (default: {' '.join(map(str, DEFAULT_GAPS))})")
    parser.add_argument("--roi", default="none", metavar="auto|none|MASK",
                        help="region of interest of the detection: none (default), auto (the field of view, "
                             "estimated from the sequence) or a mask image (non-zero inside)")
    parser.add_argument("--highlights", choices=HIGHLIGHTS, default="detected",
                        help="highlight masks for the specglue-* modes: detected on the full frames (default) or none")
    parser.add_argument("--detector", default=DEFAULT_METHOD, choices=sorted(METHOD_DEFAULTS),
                        help=f"highlight detector (default: {DEFAULT_METHOD})")
    parser.add_argument("--frames", nargs=2, metavar=("FIRST", "LAST"),
                        help="only the frames from FIRST to LAST (names, both included); default: all")


#: each benchmark's own options (:data:`specglue.eval.BENCHMARKS`)
_BENCHMARK_OPTIONS = {"homography": _homography_options, "hpatches": _hpatches_options, "pose": _pose_options,
                      "rotation": _rotation_options, "sequence-pose": _sequence_pose_options}


def _run_eval(benchmark: Any, args: argparse.Namespace) -> Dict[str, Any]:
    """:func:`specglue.eval.runner.run` with the options :func:`_add_eval_options` parsed."""
    from .eval import runner

    own = list(inspect.signature(benchmark.prepare).parameters)[1:]  # after ``options``
    settings = {name: getattr(args, name) for name in own if hasattr(args, name)}
    return runner.run(benchmark, features=args.features, methods=args.methods,
                      specular=None if args.specular == "none" else args.specular, seed=args.seed,
                      max_num_keypoints=args.max_keypoints, resize=args.resize or None,
                      ransac_threshold=args.ransac_threshold, out_dir=args.out_dir, overwrite=args.overwrite,
                      device=args.device, mnn_ratio=args.mnn_ratio, weights=args.weights,
                      extractor_conf={"model_name": args.variant} if args.variant else {},
                      lightglue_conf={"mp": True} if args.bf16 else {}, preset=args.preset, **settings)


def _add_eval_commands(sub: argparse._SubParsersAction) -> None:
    from .eval import BENCHMARKS

    evaluate = sub.add_parser(
        "eval", help=f"evaluate matchers ({', '.join(BENCHMARKS)}, rescore)",
        description="Compare specglue (each specular mode), the official LightGlue, kornia's LightGlue "
                    "and mutual nearest neighbour on the same features. Prints a Markdown table and "
                    "writes results.json and plots to --out-dir.")
    benchmarks = evaluate.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, bench in BENCHMARKS.items():
        parser = benchmarks.add_parser(name, help=bench.help, description=bench.help)
        _add_eval_options(parser, bench)
        parser.set_defaults(func=lambda args, bench=bench: _print_table(_run_eval(bench, args)["table"]))
    trajectory = benchmarks.add_parser(
        "trajectory", help="a reconstruction's camera trajectory against known poses (needs specglue[colmap])",
        description="Align the model to the known poses by a similarity of the camera centres, then report the "
                    "registered fraction, the ATE relative to the path length, rotation errors, relative pose "
                    "errors between consecutive images and the focal error.")
    trajectory.add_argument("model", type=Path, metavar="MODEL_DIR", help="a COLMAP model, or a folder with sparse/")
    trajectory.add_argument("--gt", required=True, type=Path, metavar="POSES",
                            help="known poses: a COLMAP model or an endoscopy motion.yaml folder")
    trajectory.add_argument("--registered-only", action="store_true",
                            help="judge only the images the model registered (default: every image with known pose)")
    trajectory.add_argument("--out", type=Path, metavar="RESULT.json", help="also write the errors as JSON")
    trajectory.set_defaults(func=cmd_trajectory)
    rescore = benchmarks.add_parser("rescore", help="score the caches of a finished run again, without matching")
    rescore.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    rescore.set_defaults(func=cmd_rescore)


def _print_table(table: str) -> int:
    print(table)
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from .export.onnx import export_onnx
    from .model.lightglue import LightGlue

    model = LightGlue(features=args.features, depth_confidence=-1, width_confidence=-1)
    path = export_onnx(model, args.output, with_specular=args.with_specular, opset=args.opset)
    print(f"wrote {path} (fixed depth: {model.conf.n_layers} layers, no early stopping or pruning)")
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from .eval import rescore

    return _print_table(rescore(args.out_dir)["table"])


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.num_threads:
        import torch

        torch.set_num_threads(args.num_threads)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args) or 0)
    except (SpecglueError, MissingDependency, FileNotFoundError, ValueError) as err:  # bugs keep their traceback
        print(f"specglue {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
