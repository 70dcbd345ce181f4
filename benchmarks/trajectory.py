"""Reconstructions judged by ground truth: the sinus sequence's trajectory, and global against
incremental mapping.

1. ``specglue reconstruct`` on the sinus frames of ``../shared/data/13_sinus_endoscopy_sfm_poses``
   (35 frames, 1920x1080, poses and intrinsics from structure from motion) given as the folder,
   with the defaults (a sequence: one camera, self-calibrated focal, the ``video`` preset,
   sequential pairs) in four extraction configurations: masks off (no highlight masks, whole
   frame), highlight masks only, field of view only, and both (the defaults). Each row: frames
   registered, cameras, the focal against the truth's 666 px, ATE as % of the path length after
   a similarity alignment, rotation errors, relative rotation error between consecutive frames,
   whether the model passed its checks, and the seconds of each stage. The defaults' pictures
   go to docs/reconstruction_sinus.png and docs/reconstruction_view.png (the page in headless
   Chromium).
2. The defaults' features and matches mapped again with ``--mapper global`` (GLOMAP).
3. The shared photo collection (``02_hloc_sacre_coeur/mapping``, 10 photos, exhaustive pairs)
   mapped both ways. It has no ground truth: accuracy there is the agreement of the global
   model with the incremental one (same similarity alignment), labelled as such.

Everything runs in ``--work-dir`` (default ``outputs/trajectory``); a rerun reuses the features
and matches there and maps again. Run it alone: the seconds are part of the result.

    python benchmarks/trajectory.py --out benchmarks/results/trajectory_sinus
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List

from specglue.collection.extract import ExtractionSettings
from specglue.collection.reconstruct import reconstruct
from specglue.collection.view import screenshot_page
from specglue.eval import report
from specglue.eval.data import find_data_dir
from specglue.geometry.poses import read_colmap_poses
from specglue.geometry.trajectory import evaluate_trajectory
from specglue.ops.cpu import cpu_model

ROOT = Path(__file__).resolve().parents[1]
SINUS = "13_sinus_endoscopy_sfm_poses"
PHOTOS = "02_hloc_sacre_coeur/mapping"
#: configuration -> extraction settings (everything else: reconstruct's defaults)
CONFIGS: Dict[str, Dict[str, str]] = {
    "field of view + highlight masks (defaults)": {"specular": "auto", "roi": "auto"},
    "masks off": {"specular": "none", "roi": "none"},
    "highlight masks": {"specular": "auto", "roi": "none"},
    "field of view": {"specular": "none", "roi": "auto"},
}
DEFAULTS = "field of view + highlight masks (defaults)"


def reuse_matches(source: Path, target: Path) -> None:
    """Start ``target`` with the features and matches (and pairs) of ``source``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("features.h5", "matches.h5", "pairs.txt"):
        if not (target / name).exists():
            shutil.copyfile(source / name, target / name)


def save_pictures(out_dir: Path) -> None:
    """The defaults' pictures for docs/reconstruction.md: the four-view PNG and a screenshot of
    the page in headless Chromium (skipped, with a note, without a browser)."""
    shutil.copyfile(out_dir / "reconstruction.png", ROOT / "docs" / "reconstruction_sinus.png")
    try:
        screenshot_page(out_dir / "model.html", ROOT / "docs" / "reconstruction_view.png", size=(1000, 700))
    except RuntimeError as err:
        print(f"no screenshot of the page: {err}")


def sinus_row(label: str, summary: Dict[str, Any]) -> Dict[str, Any]:
    trajectory, camera = summary["trajectory"], summary["cameras_checked"]
    focals = [c["focal"] for c in camera]
    return {
        "config": label,
        "registered": f"{summary['registered_images']}/{summary['images_total']}",
        "cameras": summary["cameras"],
        "focal_px": round(sum(focals) / len(focals)),
        "focal_error_pct": 100 * trajectory["focal_error"]["mean"],
        "ate_pct": 100 * trajectory["ate_relative"],
        "rotation_median_deg": trajectory["rotation_error_deg"]["median"],
        "rpe_rotation_median_deg": trajectory["rpe_rotation_deg"]["median"],
        "reliable": summary["reliable"],
        "seconds": summary["seconds"],
        "pairs": summary["pairs"],
        "points3D": summary["points3D"],
        "mean_reprojection_error": summary["mean_reprojection_error"],
        "intrinsics": summary["intrinsics"],
        "trajectory": {k: v for k, v in trajectory.items() if k != "per_image"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=ROOT / "outputs" / "trajectory")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "trajectory_sinus",
                        help="results prefix: writes PREFIX.md and PREFIX.json")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS),
                        help="sinus configurations to run (default: all)")
    args = parser.parse_args()
    data = find_data_dir() or ROOT.parent / "shared" / "data"
    sinus = data / SINUS
    cpu = cpu_model()
    rows: List[Dict[str, Any]] = []
    for label in args.configs:
        out = args.work_dir / label.split(" (")[0].replace(" ", "-").replace("+", "and")
        summary = reconstruct(sinus, out, ExtractionSettings(**CONFIGS[label]), ground_truth=sinus, progress=False)
        rows.append(sinus_row(label, summary))
        print(rows[-1], flush=True)
        if label == DEFAULTS:
            save_pictures(out)
            reuse_matches(out, args.work_dir / "defaults-global")
            summary = reconstruct(sinus, args.work_dir / "defaults-global", ground_truth=sinus, mapper="global",
                                  progress=False)
            rows.append(sinus_row("defaults, global mapper (same features and matches)", summary))
            print(rows[-1], flush=True)

    photos: Dict[str, Any] = {}
    for mapper in ("incremental", "global"):
        out = args.work_dir / f"photos-{mapper}"
        if mapper == "global":
            reuse_matches(args.work_dir / "photos-incremental", out)
        start = time.monotonic()
        summary = reconstruct(data / PHOTOS, out, mapper=mapper, progress=False)
        photos[mapper] = {"registered": f"{summary['registered_images']}/{summary['images_total']}",
                          "points3D": summary["points3D"], "mean_reprojection_error": summary["mean_reprojection_error"],
                          "mapping_seconds": summary["seconds"]["mapping"], "total_seconds": time.monotonic() - start,
                          "reliable": summary["reliable"]}
    agreement = evaluate_trajectory(read_colmap_poses(args.work_dir / "photos-global"),
                                    read_colmap_poses(args.work_dir / "photos-incremental"))
    photos["global"]["agreement_ate_pct"] = 100 * agreement["ate_relative"]
    photos["global"]["agreement_rotation_median_deg"] = agreement["rotation_error_deg"]["median"]

    lines = [f"CPU: {cpu}. Command: `python benchmarks/trajectory.py --out {args.out.name}` "
             f"(relative to benchmarks/results).", "",
             f"Sinus sequence ({SINUS}, 35 frames 1920x1080, ground-truth focal 666 px): `specglue reconstruct "
             "FOLDER` with defaults but for the extraction configuration.", "",
             "| configuration | registered | cameras | focal px (error) | ATE % of path | rotation error median ° "
             "| relative rotation error median ° | checks | seconds extract / match / database / mapping |",
             "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for row in rows:
        s = row["seconds"]
        lines.append(f"| {row['config']} | {row['registered']} | {row['cameras']} | {row['focal_px']} "
                     f"({row['focal_error_pct']:.1f} %) | {row['ate_pct']:.2f} | {row['rotation_median_deg']:.2f} | "
                     f"{row['rpe_rotation_median_deg']:.3f} | {'reliable' if row['reliable'] else 'FLAGGED'} | "
                     f"{s['extract']:.0f} / {s['match']:.0f} / {s['database']:.0f} / {s['mapping']:.0f} |")
    lines += ["", f"Photo collection ({PHOTOS}, no ground truth; agreement = the global model against the "
              "incremental one):", "",
              "| mapper | registered | 3D points | reprojection error px | mapping s | agreement ATE % / rotation ° |",
              "|---|---|---:|---:|---:|---|"]
    for mapper, row in photos.items():
        agreement_text = (f"{row['agreement_ate_pct']:.2f} / {row['agreement_rotation_median_deg']:.2f}"
                          if mapper == "global" else "(reference)")
        lines.append(f"| {mapper} | {row['registered']} | {row['points3D']} | {row['mean_reprojection_error']:.2f} | "
                     f"{row['mapping_seconds']:.1f} | {agreement_text} |")
    table = "\n".join(lines) + "\n"
    print(table)
    report.write_text(table, args.out.with_suffix(".md"))
    report.write_json({"cpu": cpu, "sinus": rows, "photos": photos}, args.out.with_suffix(".json"))


if __name__ == "__main__":
    main()
