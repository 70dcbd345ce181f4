"""What the ``fast`` preset's homography accuracy is made of: int8 linear layers, the earlier
exits and the match threshold, each alone and together, against fp32 with the official settings
(``specglue eval homography``: the shared photos, synthetic homographies, 1024 keypoints at
640 px, ``specglue-off``). The speed of each variant is ``benchmarks/speed.py --presets fast``'s
job; this script measures accuracy only (caches in ``--work-dir``; a rerun reuses them).

    python benchmarks/fast_ablation.py --out benchmarks/results/fast_ablation
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch

import specglue.eval as sg_eval
from specglue.ops.cpu import cpu_model
from specglue.presets import get_preset

from report import write_report  # benchmarks/ is on sys.path

FAST = get_preset("fast")
#: (label, LightGlue options): int8 where the x86 quantized engine runs it
VARIANTS: List[Tuple[str, Dict[str, Any]]] = [
    ("fp32, official exits 0.95 / 0.99 (`accurate`)", {}),
    ("int8, official exits", {"int8": True}),
    ("fp32, exits 0.9 / 0.95", {"depth_confidence": 0.9, "width_confidence": 0.95}),
    ("int8, exits 0.9 / 0.95", {"int8": True, "depth_confidence": 0.9, "width_confidence": 0.95}),
    ("int8, exits 0.95 / 0.95", {"int8": True, "depth_confidence": 0.95, "width_confidence": 0.95}),
    ("int8, exits 0.9 / 0.99", {"int8": True, "depth_confidence": 0.9, "width_confidence": 0.99}),
    ("int8, exits 0.9 / 0.95, match threshold 0.2",
     {"int8": True, "depth_confidence": 0.9, "width_confidence": 0.95, "filter_threshold": 0.2}),
    # the preset as it is, in int8 whatever this machine's fast precision
    (f"int8, exits {FAST.depth_confidence} / {FAST.width_confidence}, match threshold {FAST.filter_threshold} "
     "(`fast`)", {"int8": True, "depth_confidence": FAST.depth_confidence,
                  "width_confidence": FAST.width_confidence, "filter_threshold": FAST.filter_threshold}),
]


def slug(conf: Dict[str, Any]) -> str:
    return "-".join(f"{k}_{v}" for k, v in sorted(conf.items())) or "fp32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--work-dir", type=Path, default=Path("outputs/fast_ablation"))
    parser.add_argument("--out", type=Path, default=None, help="writes OUT.md and OUT.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if FAST.precision("cpu") != "int8":
        print(f"note: the fast preset is not int8 on this machine ({FAST.describe('cpu')})", file=sys.stderr)
    rows = {}
    for label, conf in VARIANTS:
        results = sg_eval.run("homography", methods=["specglue-off"], lightglue_conf=conf,
                              out_dir=args.work_dir / slug(conf))
        summary = results["summary"]["specglue-off"]
        rows[label] = {key: summary[key] for key in summary if key.startswith(("auc_", "prec@", "recall@"))}
        rows[label].update(matches=summary["num_matches"], mean_stop=summary["mean_stop"], conf=conf)
        print(label, {k: round(v, 3) for k, v in rows[label].items() if isinstance(v, float)}, flush=True)

    base = rows[VARIANTS[0][0]]
    lines = ["| matcher | RANSAC AUC@1/3/5 px | DLT AUC@1/3/5 px | worst change vs fp32 | matches | P@1px | "
             "mean layers |", "|---|---|---|---:|---:|---:|---:|"]
    for label, r in rows.items():
        aucs = [f"auc_{kind}@{t}px" for kind in ("ransac", "dlt") for t in (1, 3, 5)]
        worst = min(100 * (r[k] - base[k]) for k in aucs)
        lines.append(f"| {label} | {' / '.join(f'{100 * r[k]:.1f}' for k in aucs[:3])} | "
                     f"{' / '.join(f'{100 * r[k]:.1f}' for k in aucs[3:])} | {worst:+.1f} | {r['matches']:.0f} | "
                     f"{100 * r['prec@1px']:.1f} | {r['mean_stop']:.1f} |")
    header = f"CPU: {cpu_model()}, {args.threads} threads, torch {torch.__version__}"
    write_report(args.out, "The fast preset's homography accuracy, part by part",
                 f"{header}. `specglue eval homography`, `specglue-off`, 68 pairs.\n\n" + "\n".join(lines),
                 {"header": header, "rows": rows})


if __name__ == "__main__":
    main()
