"""Whole reconstructions with and without highlight masks: laparoscopic and phantom sequences.

Each sequence of ../shared/data (12 consecutive 320x240 frames each) goes through
``specglue.collection.reconstruct`` twice with the same features (ALIKED, detected highlight
masks stored as per-keypoint specularity): the matcher in ``off`` mode (masks ignored) and in
``hard`` mode (specular keypoints kept out of attention and matching). Exhaustive pairs, the
``video`` mapping preset (the frames are consecutive video frames). The table gives registered
frames, 3D points, mean track length, mean reprojection error, and the share of the model's
2D-3D observations that lie on detected highlights (view-dependent glints make false 3D
points). Multi-threaded bundle adjustment makes mapping vary from run to run, so each
configuration is mapped ``--repeats`` times (features and matches are reused) and the table
gives the median run (by 3D points) with the range of points over the runs. Pictures of the
median run go to docs/reconstruction_<sequence>_<mode>.png.

    python benchmarks/reconstruction.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pycolmap

from specglue import storage
from specglue.collection.extract import ExtractionSettings
from specglue.collection.match import MatchSettings
from specglue.collection.reconstruct import reconstruct
from specglue.eval.data import find_data_dir
from specglue.confs import SPECULAR_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]
SEQUENCES = {
    "laparoscopic": "10_laparoscopic_cholecystectomy_sequence_rvim/frames",
    "phantom": "12_phantom_bowel_metal_instrument_sequence_rvim/frames",
}
MODES = ("off", "hard")


def specular_share(out_dir: Path) -> float:
    """Share of the model's observations whose keypoint is specular (stored specularity)."""
    model = pycolmap.Reconstruction(str(out_dir / "sparse"))
    on, total = 0, 0
    with storage.open_h5(out_dir / "features.h5") as f:
        for image_id in model.reg_image_ids():
            image = model.image(image_id)
            specularity = storage.read_image_features(f, image.name).specularity
            observed = [i for i, p in enumerate(image.points2D) if p.has_point3D()]
            on += int((specularity[observed] >= SPECULAR_THRESHOLD).sum())
            total += len(observed)
    return on / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-keypoints", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reconstruction.json")
    args = parser.parse_args()
    data = find_data_dir() or ROOT.parent / "shared" / "data"
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="specglue-reconstruction-"))
    extraction = ExtractionSettings(max_num_keypoints=args.max_keypoints)
    rows, results = [], {}
    for sequence, folder in SEQUENCES.items():
        for mode in MODES:
            out = work / f"{sequence}-{mode}"
            runs = []
            for _ in range(args.repeats):
                summary = reconstruct(data / folder, out, extraction, MatchSettings(specular_mode=mode),
                                      pairs="exhaustive", mapping="video", progress=False)
                runs.append((summary, specular_share(out), Path(summary["files"]["picture"]).read_bytes()))
            points = sorted(run[0]["points3D"] for run in runs)
            summary, share, png = sorted(runs, key=lambda run: run[0]["points3D"])[len(runs) // 2]
            (ROOT / "docs" / f"reconstruction_{sequence}_{mode}.png").write_bytes(png)
            results[f"{sequence}/{mode}"] = {k: summary[k] for k in (
                "registered_images", "images_total", "points3D", "observations", "mean_track_length",
                "mean_reprojection_error", "mean_matches", "verified_pairs", "inlier_matches")}
            results[f"{sequence}/{mode}"]["specular_observations"] = share
            results[f"{sequence}/{mode}"]["points3D_runs"] = points
            results[f"{sequence}/{mode}"]["registered_runs"] = [run[0]["registered_images"] for run in runs]
            registered = sorted(run[0]["registered_images"] for run in runs)
            rows.append(f"| {sequence} | {mode} | {summary['registered_images']}/{summary['images_total']} "
                        f"({registered[0]}–{registered[-1]}) | "
                        f"{summary['points3D']} ({points[0]}–{points[-1]}) | {summary['mean_track_length']:.2f} | "
                        f"{summary['mean_reprojection_error']:.3f} | {summary['mean_matches']:.0f} | "
                        f"{summary['inlier_matches']} | {100 * share:.1f} |")
            print(rows[-1], flush=True)
    table = "\n".join([
        "| sequence | masks | registered (range) | 3D points (range) | mean track length | mean reproj. error px | "
        "matches/pair | verified inlier matches | % observations on highlights |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"] + rows)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    args.out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
