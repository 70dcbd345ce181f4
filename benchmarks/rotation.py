"""The rotation-aware matcher against the official one on in-plane rotations of the shared photos.

Runs ``specglue eval rotation`` (34 photos, one rotation per photo and 30° bin, 640 px, 1024
keypoints) twice and writes one table:

- ``n16``: ALIKED-n16 features (the official extractor): the official LightGlue in one call and
  best of 4 rotations (the maintainers' workaround: image 1 also turned by 90, 180 and 270
  degrees, 3 extra extractions, 4 matching calls, the turn with the most matches wins);
- ``n16rot``: ALIKED-n16rot features: the same two, and specglue's ``aliked_rot`` weights in one
  call and at 0° and 180° (``specglue-rot2``: 1 extra extraction, 2 calls).

Cells: RANSAC AUC@3px / mean matches per bin, the mean of the bins' AUC, the matching calls and
extra extractions per pair, and the matching time per pair (all calls, extraction not
included; run it alone). The caches live in ``--work-dir``; a rerun reuses them.

    python benchmarks/rotation.py --out benchmarks/results/rotation_models
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict

from specglue import eval as sg_eval
from specglue.eval import report
from specglue.eval.benchmarks.rotation import COLUMNS
from specglue.ops.cpu import cpu_model

#: run -> (extractor settings, weights of the specglue-* methods, methods)
RUNS: Dict[str, Dict[str, Any]] = {
    "n16": {"extractor_conf": {}, "weights": None, "methods": ["reference", "reference-rot4"]},
    "n16rot": {"extractor_conf": {"model_name": "aliked-n16rot"}, "weights": "aliked_rot",
               "methods": ["specglue-off", "specglue-rot2", "reference", "reference-rot4"]},
}
#: table rows: (label, run, method, matching calls, extra extractions)
ROWS = (
    ("official, ALIKED-n16", "n16", "reference", 1, 0),
    ("official, ALIKED-n16, best of 4 rotations", "n16", "reference-rot4", 4, 3),
    ("official, ALIKED-n16rot", "n16rot", "reference", 1, 0),
    ("official, ALIKED-n16rot, best of 4 rotations", "n16rot", "reference-rot4", 4, 3),
    ("**aliked_rot**, ALIKED-n16rot", "n16rot", "specglue-off", 1, 0),
    ("**aliked_rot**, 0° and 180° (`rotations=(0, 180)`)", "n16rot", "specglue-rot2", 2, 1),
)
EXTRA_COLUMNS = (("calls / extra extractions", ("calls", "extra_extractions"), ("int", "int")),
                 ("matching ms per pair", "time_ms", "ms"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("outputs/rotation"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rotation_models"),
                        help="writes OUT.json and OUT.md")
    args = parser.parse_args()

    summaries: Dict[str, Dict[str, Any]] = {}
    titles: Dict[str, str] = {}
    for name, run in RUNS.items():
        results = sg_eval.run("rotation", methods=run["methods"], weights=run["weights"],
                              extractor_conf=run["extractor_conf"], out_dir=args.work_dir / name)
        summaries.update({f"{name}/{m}": s for m, s in results["summary"].items()})
        titles[name] = results["title"]
    rows = {label: {**summaries[f"{run}/{method}"], "calls": calls, "extra_extractions": extra}
            for label, run, method, calls, extra in ROWS}
    table = report.markdown_table(rows, tuple(COLUMNS) + EXTRA_COLUMNS)
    header = (f"In-plane rotations of the shared photos ({titles['n16rot']}); cells: RANSAC AUC@3px / mean "
              f"matches; CPU: {cpu_model()}\n\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(header + table, args.out.with_suffix(".md"))
    report.write_json({"rows": {label: [run, method] for label, run, method, _, _ in ROWS}, "titles": titles,
                       "table": table, "summaries": {label: summaries[f"{run}/{method}"]
                                                     for label, run, method, _, _ in ROWS}},
                      args.out.with_suffix(".json"))
    print(header + table)


if __name__ == "__main__":
    main()
