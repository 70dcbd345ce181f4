"""How exact are the training labels that structure-from-motion tracks give?

The endoscopy fine-tune (``configs/aliked_endo.yaml``) labels real sinus pairs through depth
interpolated between the track points each frame sees (:func:`specglue.train.data.track_depth`).
This leaves each track point out in turn, predicts its depth from the others, and reprojects it
into every other training frame that sees it within ``--max-gap`` frames: the distance to the
reprojection with its own depth is the label error the interpolation makes, in pixels of the
``--width``-wide training images (positives need 3 px, negatives 5 px).

    python benchmarks/track_labels.py --out benchmarks/results/track_labels
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from specglue.eval import report
from specglue.eval.data import find_data_dir
from specglue.geometry.poses import read_endoscopy_sfm_points, read_endoscopy_sfm_poses
from specglue.images import load_image
from specglue.train.data import track_depth_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequence", type=Path, default=None,
                        help="structure-from-motion sequence (default: the shared sinus sequence)")
    parser.add_argument("--frames", nargs=2, type=int, default=(4584, 4593), help="first and last frame, inclusive")
    parser.add_argument("--max-gap", type=int, default=10)
    parser.add_argument("--width", type=int, default=640, help="training image width in px (the unit of the errors)")
    parser.add_argument("--out", type=Path, default=None, help="writes OUT.md")
    args = parser.parse_args()
    folder = args.sequence or find_data_dir() / "13_sinus_endoscopy_sfm_poses"
    poses = read_endoscopy_sfm_poses(folder)
    points, views = read_endoscopy_sfm_points(folder)
    frames = [k for k in range(args.frames[0], args.frames[1] + 1) if f"{k:08d}.jpg" in poses.K]
    scale = args.width / load_image(folder / f"{frames[0]:08d}.jpg").shape[1]  # training px per stored px
    rows = {}
    for gap in range(1, args.max_gap + 1):
        errors = []
        for a in frames:
            b = a + gap
            if b not in frames:
                continue
            name_a, name_b = f"{a:08d}.jpg", f"{b:08d}.jpg"
            K, T = poses.K[name_a], poses.T_cam_from_world[name_a]
            seen = np.flatnonzero([a in v for v in views])
            T_ab = poses.relative_pose(name_a, name_b)
            for left_out in seen:
                if b not in views[left_out]:
                    continue
                camera = points[left_out] @ T[:3, :3].T + T[:3, 3]
                uv = (K @ camera)[:2] / camera[2]
                others = seen[seen != left_out]
                z = track_depth_at(points[others], K, T, uv[None])[0]
                if z <= 0:  # outside the others' hull: its label would be "unknown"
                    continue
                ray = np.linalg.inv(K) @ np.r_[uv, 1.0]
                moved = [T_ab[:3, :3] @ (ray * depth) + T_ab[:3, 3] for depth in (z, camera[2])]
                predicted, truth = [(poses.K[name_b] @ m)[:2] / m[2] for m in moved]
                errors.append(np.linalg.norm(predicted - truth) * scale)
        if errors:
            e = np.asarray(errors)
            rows[f"gap {gap}"] = {"observations": len(e), "median": f"{np.median(e):.2f}",
                                  "p90": f"{np.percentile(e, 90):.2f}", "max": f"{e.max():.2f}",
                                  "within3": float(np.mean(e < 3))}
    columns = [("observations", "observations", "int"), ("median px", "median", "str"),
               ("90th percentile px", "p90", "str"), ("max px", "max", "str"), ("% within 3 px", "within3", "pct")]
    table = report.markdown_table(rows, columns).replace("| method |", "| frames apart |", 1)
    text = (f"# Track labels: leave-one-out reprojection error\n\nCommand: `python benchmarks/track_labels.py"
            f"{' --out ' + str(args.out) if args.out else ''}`; frames {args.frames[0]}-{args.frames[1]} of "
            f"{folder.name}, pixels of {args.width}-px-wide images.\n\n{table}\n")
    print(text)
    if args.out is not None:
        report.write_text(text, f"{args.out}.md")


if __name__ == "__main__":
    main()
