"""Collection throughput: pairs per second of ``match-pairs`` for one process, batched, and Ray.

Every photo and frame of ../shared/data (about 100; masks left out) is extracted once (ALIKED,
``--max-keypoints``, long side at most ``--resize``) into a features file; two pair lists are
matched from it: ``sequential`` (window 10 + quadratic offsets over the images in folder
order, as for video) and ``exhaustive`` (every pair of the first 46 images), each over 1,000
pairs. For each list and each engine -- one process with ``batch_size=1``, one process with
``batch_size=8``, Ray with 1 worker and with 2 workers (one CPU each) -- the run starts from an
empty matches file; the table gives pairs per second (matching only: Ray's start-up is
timed apart), the peak RSS (driver + Ray workers, from /proc) over the first and the last
fifth of the run, and whether the matches equal those of the first engine.

    python benchmarks/collection.py                    # the whole table (~15 min on 2 cores)
    python benchmarks/collection.py --lists exhaustive --engines local local-batched
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch

from specglue import storage
from specglue.collection.engine import LocalEngine, RayEngine
from specglue.collection.extract import ExtractionSettings, extract_features
from specglue.collection.match import match_pairs
from specglue.collection.pairs import exhaustive_pairs, image_names, sequential_pairs
from specglue.eval.data import find_data_dir
from specglue.images import IMAGE_SUFFIXES
from specglue.ops.cpu import cpu_model

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("local", "local-batched", "ray-1", "ray-2")


def rss_mb() -> float:
    """Resident memory of this process and every Ray worker process, in MiB (Linux /proc)."""
    total = 0
    for pid in [str(os.getpid())] + [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            if pid != str(os.getpid()):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if not cmdline.startswith(b"ray::"):
                    continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class MemorySampler:
    """Samples :func:`rss_mb` every ``period`` seconds in a thread."""

    def __init__(self, period: float = 0.5) -> None:
        self.period, self.samples = period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss_mb()))
            self._stop.wait(self.period)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self) -> Tuple[float, float]:
        """Peak RSS over the first and the last fifth of the sampled time."""
        times = np.array([t for t, _ in self.samples])
        values = np.array([v for _, v in self.samples])
        span = times[-1] - times[0]
        first = values[times <= times[0] + span / 5]
        last = values[times >= times[-1] - span / 5]
        return float(first.max()), float(last.max())


def pair_lists(names: List[str]) -> Dict[str, List[Tuple[str, str]]]:
    return {"sequential": sequential_pairs(names, 10, quadratic=True),
            "exhaustive": exhaustive_pairs(names[:46])}


def read_matches(path: Path) -> Dict[str, np.ndarray]:
    with storage.open_h5(path) as f:
        return {k: f[k]["matches0"][()] for k in storage.leaf_groups(f, "matches0")}


def run_engine(engine_name: str, features: Path, pairs, out: Path) -> Dict[str, float]:
    start = time.monotonic()
    if engine_name.startswith("ray"):
        engine = RayEngine(num_workers=int(engine_name.split("-")[1]))
    else:
        engine = LocalEngine()
    startup = time.monotonic() - start
    batch = 1 if engine_name == "local" else 8
    try:
        with MemorySampler() as memory:
            summary = match_pairs(features, pairs, out, batch_size=batch, engine=engine, progress=True)
    finally:
        engine.close()
    first, last = memory.peaks()
    return {"pairs_per_second": summary["pairs_per_second"], "startup_s": startup,
            "rss_first_mb": first, "rss_last_mb": last, "mean_matches": summary["mean_matches"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-keypoints", type=int, default=512)
    parser.add_argument("--resize", type=int, default=640)
    parser.add_argument("--lists", nargs="+", default=["sequential", "exhaustive"])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--work-dir", type=Path, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "collection.json")
    args = parser.parse_args()

    data = find_data_dir() or ROOT.parent / "shared" / "data"
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="specglue-collection-"))
    images = work / "images"  # links to the photos and frames of the shared data (no masks)
    for path in sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and "mask" not in p.name):
        link = images / path.relative_to(data)
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    features = work / "features.h5"
    settings = ExtractionSettings(max_num_keypoints=args.max_keypoints, resize=args.resize)
    start = time.monotonic()
    extracted = extract_features(images, features, settings)
    extract_s = time.monotonic() - start
    names = image_names(features)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{len(names)} images extracted in {extract_s:.0f} s ({extracted['extracted']} new, "
          f"{extracted['mean_keypoints']:.0f} keypoints each)")

    rows, results = [], {}
    for list_name in args.lists:
        pairs = pair_lists(names)[list_name]
        reference = None
        for engine_name in args.engines:
            out = work / f"matches-{list_name}-{engine_name}.h5"
            out.unlink(missing_ok=True)
            numbers = run_engine(engine_name, features, pairs, out)
            matches = read_matches(out)
            if reference is None:
                reference = matches
            numbers["identical"] = sorted(matches) == sorted(reference) and all(
                np.array_equal(matches[k], reference[k]) for k in reference)
            results[f"{list_name}/{engine_name}"] = {"pairs": len(pairs), **numbers}
            rows.append(f"| {list_name} | {len(pairs)} | {engine_name} | {numbers['pairs_per_second']:.1f} | "
                        f"{numbers['startup_s']:.1f} | {numbers['rss_first_mb']:.0f} -> {numbers['rss_last_mb']:.0f} | "
                        f"{numbers['mean_matches']:.0f} | {'yes' if numbers['identical'] else 'NO'} |")
            print(rows[-1], flush=True)
    table = "\n".join(["| pairs | # | engine | pairs/s | start-up s | peak RSS MiB, first -> last fifth | matches/pair | identical |",
                       "|---|---:|---|---:|---:|---|---:|---|"] + rows)
    header = (f"CPU: {cpu_model()} ({os.cpu_count()} cores); {len(names)} images, ALIKED "
              f"{args.max_keypoints} keypoints, long side <= {args.resize} px")
    print(header)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"header": header, "results": results}, indent=1))
    args.out.with_suffix(".md").write_text(header + "\n\n" + table + "\n")


if __name__ == "__main__":
    main()
