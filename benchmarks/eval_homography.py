"""Run the evaluation benchmarks of ``specglue.eval`` from the command line.

Thin wrapper until the ``specglue eval`` subcommands are wired: it parses the same arguments
(``add_arguments`` of each module), calls the library's ``main`` and prints the Markdown table.

Usage (from the repository root)::

    python benchmarks/eval_homography.py homography --specular camera_fixed -k 2
    python benchmarks/eval_homography.py hpatches ../shared/data/06_oxford_graffiti_homography
    python benchmarks/eval_homography.py pose ../shared/data/03_superglue_scannet_pairs_gt/scannet_sample_pairs_with_gt.txt
    python benchmarks/eval_homography.py rescore outputs/eval/<run folder>
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from specglue.eval import homography, hpatches, pose, rescore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="benchmark", required=True)
    for name, module in (("homography", homography), ("hpatches", hpatches), ("pose", pose)):
        module.add_arguments(sub.add_parser(name, help=f"specglue.eval.{module.__name__.rsplit('.', 1)[1]}"))
    p = sub.add_parser("rescore", help="score the caches of a finished run again (no matching)")
    p.add_argument("out_dir", type=Path)
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    start = time.perf_counter()
    if args.benchmark == "rescore":
        table = rescore(args.out_dir)["table"]
    else:
        table = {"homography": homography, "hpatches": hpatches, "pose": pose}[args.benchmark].main(args)
    print(table)
    print(f"total time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
