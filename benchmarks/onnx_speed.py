"""Matcher latency: the exported ONNX graph (ONNX Runtime, CPU) against PyTorch.

Both run the same fixed-depth LightGlue (all layers, no early stopping, no pruning:
``depth_confidence=-1, width_confidence=-1``) on real ALIKED features of the Sacre Coeur pair
(top-k mode, 1024 px long side), cut to 512 / 1024 / 2048 keypoints per image. The adaptive
PyTorch model (the default settings), which the ONNX graph cannot express, is timed as a
third column for reference. Runs are interleaved in one process (one call of each backend per
round) after warm-up, with the same number of threads for PyTorch and ONNX Runtime; the
table reports medians in milliseconds and the PyTorch / ONNX ratios (> 1: ONNX is faster).

Usage (from the repository root):
    python benchmarks/onnx_speed.py --rounds 15 --threads 2
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import torch

from specglue import LightGlue
from specglue.export import OnnxMatcher, export_onnx
from specglue.features.aliked import ALIKED

logger = logging.getLogger("benchmarks.onnx_speed")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
PAIR = ("01_lightglue_assets/sacre_coeur1.jpg", "01_lightglue_assets/sacre_coeur2.jpg")


def load_features(data_dir: Path, max_kpts: int) -> List[Dict[str, torch.Tensor]]:
    """ALIKED features of both images: keypoints [1, N, 2], descriptors [1, N, 128], image_size."""
    extractor = ALIKED(max_num_keypoints=max_kpts, detection_threshold=0.0, resize=1024).eval()
    views = []
    for name in PAIR:
        path = data_dir / name
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read {path}")
        feats = extractor.extract(image[:, :, ::-1].copy())
        views.append({k: feats[k] for k in ("keypoints", "descriptors", "image_size")})
    return views


def take(view: Dict[str, torch.Tensor], n: int) -> Dict[str, torch.Tensor]:
    if view["keypoints"].shape[1] < n:
        raise ValueError(f"only {view['keypoints'].shape[1]} keypoints were detected, {n} requested")
    return {**view, "keypoints": view["keypoints"][:, :n], "descriptors": view["descriptors"][:, :n]}


def time_interleaved(runs: Dict[str, Callable[[], object]], rounds: int, warmup: int) -> Dict[str, float]:
    """Median wall time in ms of each callable, one call of each per round."""
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op threads of both PyTorch and ONNX Runtime")
    parser.add_argument("--onnx", type=Path, default=None, help="reuse this exported graph")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    fixed = LightGlue(features="aliked", depth_confidence=-1, width_confidence=-1).eval()
    adaptive = LightGlue(features="aliked").eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.onnx or export_onnx(fixed, Path(tmp) / "aliked.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        matcher = OnnxMatcher(path, session_options=options)
        views = load_features(args.data_dir, max(args.sizes))
        rows = []
        for n in args.sizes:
            data = {"image0": take(views[0], n), "image1": take(views[1], n)}
            with torch.inference_mode():
                ref, out = fixed(data), matcher(data)
            agree = (ref["matches0"] == out["matches0"]).float().mean().item()

            def torch_run(model: LightGlue = fixed, data: dict = data) -> object:
                with torch.inference_mode():
                    return model(data)

            medians = time_interleaved({
                "onnx": lambda data=data: matcher(data),
                "torch": torch_run,
                "adaptive": lambda data=data: torch_run(adaptive, data),
            }, args.rounds, args.warmup)
            rows.append((n, medians, agree, int((out["matches0"] > -1).sum())))
            logger.info("%d keypoints: %s", n, medians)

    print(f"ONNX Runtime {ort.__version__} (CPUExecutionProvider) vs PyTorch {torch.__version__}, "
          f"{args.threads} thread(s), ALIKED on sacre_coeur, medians of {args.rounds} interleaved rounds\n")
    print("| keypoints / image | ONNX fixed (ms) | PyTorch fixed (ms) | PyTorch / ONNX | "
          "PyTorch adaptive (ms) | adaptive / ONNX | matches (ONNX) | matches0 agree |")
    print("|---|---|---|---|---|---|---|---|")
    for n, m, agree, count in rows:
        print(f"| {n} | {m['onnx']:.1f} | {m['torch']:.1f} | {m['torch'] / m['onnx']:.2f} | "
              f"{m['adaptive']:.1f} | {m['adaptive'] / m['onnx']:.2f} | {count} | {agree:.2%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
