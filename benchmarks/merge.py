"""Merging resumable outputs: time per pair and per merge, file size and memory as a matches file grows.

``match_pairs`` itself runs, on a synthetic features file (``--pairs`` sequential pairs over
``--pairs / --window`` images of ``--matches`` keypoints each, 128-d descriptors as ALIKED's)
with an engine that stands for the matcher: for each pair it returns random ``matches0``
(``--matches`` indices, -1 for some) and scores at once. Everything else is the real run:
reading the features, the part files of ``--flush-pairs`` pairs (``write_pair_matches``),
a merge whenever more than 64 parts wait (:class:`specglue.storage.PartJournal`),
the final merge. ``--flush-pairs`` is smaller than ``match-pairs``' 256 so that each tenth of
the run holds several merges; a merge's cost follows the pairs it folds (65 parts).

For each tenth of the pairs the table gives: microseconds per pair outside merges (features
read, part files written), the merges that ended in it and their mean time, the output's size,
what the merge used to cost on top (before the shadow copy: a copy of the whole output at
each merge; timed here by copying the output once per tenth, from the page cache, so a lower
bound), the largest resident memory after its merges (VmRSS) and the process' peak so far
(``ru_maxrss``). Flat merge times and memory down the table are what is shown (memory grows
over the first merges, while HDF5's caches of the features file and of the merges fill); the
whole-output copies the merges made are counted (none expected on a fresh run).

    python benchmarks/merge.py                           # 100,000 pairs (a few minutes)
    python benchmarks/merge.py --quick --out outputs/merge.json
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List

import numpy as np

from specglue import storage
from specglue.storage import PartJournal
from specglue.collection.match import match_pairs
from specglue.collection.pairs import sequential_pairs
from specglue.eval import report
from specglue.ops.cpu import cpu_model

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTOR_DIM = 128  # ALIKED's, as the features file records


def shown_path(path: Path) -> str:
    """A path as the results record it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def vm_rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """The largest resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_features(path: Path, count: int, keypoints: int) -> List[str]:
    """A features file of ``count`` images with random features; their names."""
    rng = np.random.default_rng(0)
    names = [f"frames/{i:06d}.png" for i in range(count)]
    with storage.open_h5(path, "w") as f:
        storage.write_settings(f, {"extraction": {"features": "aliked"}})
        for name in names:
            feats = storage.ImageFeatures(
                keypoints=rng.random((keypoints, 2), np.float32) * 640,
                descriptors=rng.standard_normal((keypoints, DESCRIPTOR_DIM), np.float32),
                scores=rng.random(keypoints, np.float32), image_size=np.array([640, 480], np.float32))
            storage.write_image_features(f, name, feats, as_half=True)
    return names


class SyntheticEngine:
    """Stands for the matcher: random matches for each pair; notes when each tenth of the pairs
    has gone through the run (the time between two notes is the run's, merges included)."""

    name = "synthetic"

    def __init__(self, marks: List[int], on_mark: Callable[[int], None]) -> None:
        self.rng = np.random.default_rng(1)
        self.marks, self.on_mark = list(marks), on_mark
        self.pairs = 0

    def map(self, factory: Any, chunks: Iterable[list]) -> Iterator[list]:
        for chunk in chunks:
            results = []
            for name0, name1, feats0, feats1 in chunk:
                n0, n1 = len(feats0.keypoints), len(feats1.keypoints)
                matches0 = self.rng.integers(-1, n1, n0).astype(np.int32)
                results.append((name0, name1, matches0, self.rng.random(n0).astype(np.float32)))
            while self.marks and self.pairs >= self.marks[0]:
                self.on_mark(self.marks.pop(0))
            self.pairs += len(results)
            yield results

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true",
                        help="5,000 pairs, 8 per part: a check that it runs (a minute at most)")
    parser.add_argument("--matches", type=int, default=64, help="keypoints per image = matches0 per pair")
    parser.add_argument("--window", type=int, default=10, help="sequential pairs per image")
    parser.add_argument("--flush-pairs", type=int, default=32, help="pairs per part file")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per engine chunk (match-pairs' default)")
    parser.add_argument("--work-dir", type=Path, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "merge.json")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.flush_pairs = 5_000, 8
    logging.basicConfig(level=logging.WARNING)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="specglue-merge-"))
    work.mkdir(parents=True, exist_ok=True)
    features, out = work / "features.h5", work / "matches.h5"
    PartJournal(out, "matches0", "matches file").discard()
    start = time.monotonic()
    names = write_features(features, -(-args.pairs // args.window) + args.window + 1, args.matches)
    pairs = sequential_pairs(names, args.window)[:args.pairs]
    assert len(pairs) == args.pairs
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; features of {len(names)} images written in "
          f"{time.monotonic() - start:.0f} s; {args.pairs} pairs to {out}", flush=True)

    step = -(-args.pairs // 10)
    marks = list(range(step, args.pairs, step))
    excluded = [0.0]  # seconds spent timing the old merge's copy, left out of the run's clock
    merges: List[Dict[str, float]] = []  # every merge: when it ended, how long, the output after it
    tenths: List[Dict[str, float]] = []  # every tenth of the pairs: when it ended, the old merge's copy
    whole_copies = [0]  # copies of the whole output the merges made
    real_copyfile, real_merge = shutil.copyfile, PartJournal.merge

    def clock() -> float:
        return time.monotonic() - excluded[0]

    def counting_copyfile(src, dst, **kwargs):
        whole_copies[0] += 1
        return real_copyfile(src, dst, **kwargs)

    def timed_merge(journal: PartJournal, settings: Dict[str, Any]) -> Path:
        begin = clock()
        path = real_merge(journal, settings)
        merges.append({"at": clock(), "seconds": clock() - begin, "size_mb": path.stat().st_size / 2 ** 20,
                       "vm_rss_mb": vm_rss_mb()})
        return path

    def end_tenth(pairs_done: int) -> None:
        at, copy_s = clock(), float("nan")
        if out.is_file():  # the old merge's extra cost at this size: a copy of the whole output
            begin = time.monotonic()
            real_copyfile(out, work / "old-merge-copy.h5")
            copy_s = time.monotonic() - begin
            (work / "old-merge-copy.h5").unlink()
            excluded[0] += time.monotonic() - begin
        tenths.append({"pairs": pairs_done, "at": at, "old_copy_s": copy_s, "peak_rss_mb": peak_rss_mb()})

    engine = SyntheticEngine(marks, end_tenth)
    shutil.copyfile, PartJournal.merge = counting_copyfile, timed_merge
    run_start = clock()
    try:
        summary = match_pairs(features, pairs, out, batch_size=args.batch_size, engine=engine,
                              flush_pairs=args.flush_pairs, flush_seconds=float("inf"), progress=False)
    finally:
        shutil.copyfile, PartJournal.merge = real_copyfile, real_merge
    end_tenth(args.pairs)
    run_s = tenths[-1]["at"] - run_start
    assert summary["matched"] == args.pairs
    with storage.open_h5(out) as f:
        stored = len(storage.leaf_groups(f, "matches0"))
    assert stored == args.pairs, f"the output holds {stored} pairs, not {args.pairs}"

    rows, results = [], []
    previous_at, previous_pairs = run_start, 0
    for tenth in tenths:
        inside = [m for m in merges if previous_at < m["at"] <= tenth["at"]]
        before = [m for m in merges if m["at"] <= tenth["at"]]
        merge_s = sum(m["seconds"] for m in inside)
        row = {"pairs": tenth["pairs"],
               "us_per_pair": 1e6 * (tenth["at"] - previous_at - merge_s) / (tenth["pairs"] - previous_pairs),
               "merges": len(inside), "merge_s": merge_s / len(inside) if inside else float("nan"),
               "size_mb": before[-1]["size_mb"] if before else 0.0,
               "old_copy_s": tenth["old_copy_s"],
               "vm_rss_mb": max((m["vm_rss_mb"] for m in inside), default=float("nan")),
               "peak_rss_mb": tenth["peak_rss_mb"]}
        results.append({k: None if v != v else v for k, v in row.items()})  # NaN: none in this tenth
        rows.append(f"| {row['pairs']} | {row['us_per_pair']:.0f} | {row['merges']} | {row['merge_s']:.3f} | "
                    f"{row['size_mb']:.1f} | {row['old_copy_s']:.3f} | {row['vm_rss_mb']:.0f} | "
                    f"{row['peak_rss_mb']:.0f} |")
        print(rows[-1], flush=True)
        previous_at, previous_pairs = tenth["at"], tenth["pairs"]
    table = "\n".join(["| pairs done | us/pair outside merges | merges | s per merge | output MiB | "
                       "old merge's extra copy s | VmRSS MiB after merges | peak RSS MiB |",
                       "|---:|---:|---:|---:|---:|---:|---:|---:|"] + rows)
    header = (f"CPU: {cpu_model()} ({os.cpu_count()} cores); {args.pairs} pairs, {args.matches} matches each, "
              f"{args.flush_pairs} pairs per part, a merge every 65 parts ({len(merges)} merges, "
              f"{whole_copies[0]} whole-output copies); run {run_s:.0f} s")
    print(header)
    print(table)
    settings = {k: shown_path(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    report.write_json({"header": header, "args": settings, "tenths": results, "merges": merges}, args.out)
    report.write_text(header + "\n\n" + table + "\n", args.out.with_suffix(".md"))
    if args.work_dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
