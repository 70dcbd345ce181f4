"""Is one method's pose AUC really above another's? A paired bootstrap over the same pairs.

Each side is a pose benchmark's ``results.json`` (``specglue eval pose`` / ``sequence-pose``
``--out-dir``) and one of its methods, written ``RESULTS.json:METHOD``; both must hold the same
pairs. Prints the AUC difference (second minus first) at each threshold with its 95 % interval
over ``--resamples`` draws of the pairs (:func:`specglue.eval.metrics.paired_bootstrap_auc`),
and on how many pairs the second is better or worse.

    python benchmarks/compare_pose.py outputs/judge/official/results.json:specglue-cross \\
        outputs/judge/endo/results.json:specglue-cross
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, Tuple

from specglue.eval.metrics import paired_bootstrap_auc


def read_errors(side: str) -> Tuple[str, Dict[str, float]]:
    """``RESULTS.json:METHOD`` -> (label, pair name -> pose error in degrees)."""
    path, sep, method = side.rpartition(":")
    if not sep or not Path(path).is_file():
        raise SystemExit(f"{side!r}: expected RESULTS.json:METHOD with an existing results file")
    results = json.loads(Path(path).read_text())
    if method not in results.get("per_pair", {}):
        raise SystemExit(f"{path} has no method {method!r}; it holds {sorted(results.get('per_pair', {}))}")
    errors = {r["pair"]: float("inf") if r["pose_error"] in (None, "inf") else float(r["pose_error"])
              for r in results["per_pair"][method]}
    return f"{Path(path).parent.name}:{method}", errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="RESULTS.json:METHOD, the reference")
    parser.add_argument("second", help="RESULTS.json:METHOD, compared with it")
    parser.add_argument("--thresholds", nargs="+", type=float, default=[5, 10, 20], help="degrees")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    (label_a, a), (label_b, b) = read_errors(args.first), read_errors(args.second)
    if set(a) != set(b):
        raise SystemExit(f"the two results hold different pairs ({len(a)} and {len(b)}; "
                         f"{len(set(a) ^ set(b))} in only one)")
    pairs = sorted(a)
    print(f"{label_b} against {label_a}, {len(pairs)} pairs, {args.resamples} resamples (seed {args.seed})")
    for t in args.thresholds:
        r = paired_bootstrap_auc([a[p] for p in pairs], [b[p] for p in pairs], t, args.resamples, args.seed)
        print(f"AUC@{t:g}: {r['difference']:+.1f} [{r['low']:+.1f}, {r['high']:+.1f}] (95 %); "
              f"better on {r['better']} pairs, worse on {r['worse']}")


if __name__ == "__main__":
    main()
