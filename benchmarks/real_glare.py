"""The specular modes of ``specglue.LightGlue`` on real glare: two endoscopy-like sequences.

Data (``../shared/data``, read in place, never copied):

- ``laparoscopic``: ``10_laparoscopic_cholecystectomy_sequence_rvim/frames``, 12 consecutive
  320x240 frames of liver and gallbladder with many glints (11 consecutive pairs);
- ``phantom``: ``12_phantom_bowel_metal_instrument_sequence_rvim/frames``, 12 consecutive
  320x240 frames of a glossy bowel phantom and a metal instrument (11 consecutive pairs).

There is no ground truth. Frame ``i`` is matched to frame ``i + gap`` (``--gaps``, default 1:
consecutive frames) with the official ALIKED / DISK features and LightGlue weights, extracted at
the native 320x240 (``--resize`` to upscale), in each mode:

- ``off``: masks ignored;
- ``hard`` / ``cross`` / ``filter``: the detector's binary mask;
- ``soft``: ``max(mask, GaussianBlur_sigma(mask))``, sigma 2 px (1 on the mask, a fading halo);
- ``extract``: keypoints in the mask removed at extraction
  (``Extractor.extract(image, specular_mask=...)``, reproduced by removing them from the
  unmasked extraction with the extractor's rule, checked once against the real call), then
  ``off``.

Masks come from ``specglue.specular.detect``: ``default`` (``detect(image)``, method
``highlight``), ``bright`` (grey > 225, the EndoMapper rule and the default before) and
``bright190`` (grey > 190, which also catches the dimmer, pinkish sheen of the phantom that
both miss). ``--mask-margin`` (3 px, as in ``benchmarks/specular.py``) is
given to the matcher and the extractor.

Metrics per row, over the pairs of a sequence:

- ``matches``: mean matches per pair;
- ``glare (issue)``: share of matches with a keypoint, in either image, on the issue's glare
  mask: grey level > 225 dilated by 5 px (square window, ``detect(image, "bright",
  threshold=225, dilate=5)``), the same mask for every row;
- ``glare (mask)``: share of matches with a keypoint within 5 px (Euclidean) of a pixel of the
  mask given to the matcher in that row (``off``: the default detector's mask);
- ``inlier ratio``: MAGSAC++ homography (``estimate_homography``, 3 px) inliers over matches,
  mean of the per-pair ratios; ``inliers``: mean inliers per pair; ``glare outl.``: mean
  matches per pair that are on the issue's glare mask and RANSAC outliers.

With small inter-frame motion a homography is a fair model (upstream uses it), but glints that
barely move between consecutive frames can also agree with it: a glare match is not
necessarily an outlier, so read the inlier ratio together with the glare shares.

Usage (from the repository root; ~6-11 min for both features on 2 CPU cores):
    python benchmarks/real_glare.py --features aliked disk --figure docs/real_glare.png \
        --out benchmarks/results/real_glare.json
    python benchmarks/real_glare.py --features aliked disk --gaps 5 --out benchmarks/results/real_glare_gap5.json
    python benchmarks/real_glare.py --figure-only --figure docs/real_glare.png   # the picture alone (~1 min)
    python benchmarks/real_glare.py --features aliked --bf16 --out benchmarks/results/real_glare_bf16.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from specglue import LightGlue
from specglue.features import build_extractor
from specglue.geometry import estimate_homography
from specglue.ops.cpu import cpu_model
from specglue.confs import SPECULAR_MODES
from specglue.specular import detect
from specglue.viz import plot_matches, save_stacked

from glare_common import ISSUE_GLARE, distance_to_mask, jsonable, lookup, run_matcher, soft_mask, suppress  # benchmarks/ is on sys.path

logger = logging.getLogger("benchmarks.real_glare")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

SEQUENCES = {
    "laparoscopic": "10_laparoscopic_cholecystectomy_sequence_rvim/frames",
    "phantom": "12_phantom_bowel_metal_instrument_sequence_rvim/frames",
}
#: mask source -> keyword arguments of ``detect``
DETECTORS = {
    "default": {},
    "bright": {"method": "bright"},
    "bright190": {"method": "bright", "threshold": 190.0},
}
#: the matcher modes that use masks, then masking at extraction
MATCH_MODES = tuple(m for m in SPECULAR_MODES if m != "off") + ("extract",)
NEAR_PX = 5.0
RANSAC_PX = 3.0


# --------------------------------------------------------------------------- helpers


def load_rgb(path: Path) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def score(k0: np.ndarray, k1: np.ndarray, matches: np.ndarray, issue: Sequence[np.ndarray],
          near: Sequence[np.ndarray]) -> Dict[str, Any]:
    """Counts of one matched pair; ``issue`` = the issue's glare masks (bool ``[H, W]``),
    ``near`` = distance fields to the row's masks."""
    p0, p1 = k0[matches[:, 0]], k1[matches[:, 1]]
    n = len(matches)
    on_issue = (lookup(issue[0], p0) | lookup(issue[1], p1)) if n else np.zeros(0, dtype=bool)
    on_mask = ((lookup(near[0], p0) <= NEAR_PX) | (lookup(near[1], p1) <= NEAR_PX)) if n else np.zeros(0, dtype=bool)
    cv2.setRNGSeed(0)
    geo = estimate_homography(p0, p1, RANSAC_PX) if n >= 4 else None
    inliers = geo.inliers if geo is not None and geo.success else np.zeros(n, dtype=bool)
    return {
        "matches": int(n),
        "on_glare_issue": int(on_issue.sum()),
        "on_glare_mask": int(on_mask.sum()),
        "inliers": int(inliers.sum()),
        "inlier_ratio": float(inliers.mean()) if n else 0.0,
        "glare_outliers": int((on_issue & ~inliers).sum()),
        "homography": geo.model.tolist() if geo is not None and geo.success else None,
    }


def aggregate(records: List[Dict[str, Any]]) -> Dict[str, float]:
    m = sum(r["matches"] for r in records)
    n = max(1, len(records))
    return {
        "pairs": len(records),
        "matches": m / n,
        "on_glare_issue": sum(r["on_glare_issue"] for r in records) / max(1, m),
        "on_glare_issue_per_pair": sum(r["on_glare_issue"] for r in records) / n,
        "on_glare_mask": sum(r["on_glare_mask"] for r in records) / max(1, m),
        "inlier_ratio": float(np.mean([r["inlier_ratio"] for r in records])) if records else 0.0,
        "inlier_ratio_pooled": sum(r["inliers"] for r in records) / max(1, m),
        "inliers": sum(r["inliers"] for r in records) / n,
        "glare_outliers": sum(r["glare_outliers"] for r in records) / n,
        "failed": sum(r["homography"] is None for r in records),
    }


# --------------------------------------------------------------------------- benchmark


def load_sequence(folder: Path) -> List[Dict[str, Any]]:
    frames = []
    for path in sorted(folder.glob("*.png")):
        rgb = load_rgb(path)
        tensor = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
        masks = {name: detect(tensor, **kw) for name, kw in DETECTORS.items()}
        frames.append({
            "name": path.stem,
            "rgb": rgb,
            "masks": masks,
            "near": {name: distance_to_mask(m) for name, m in masks.items()},
            "issue": detect(tensor, **ISSUE_GLARE).numpy(),
        })
    if len(frames) < 2:
        raise FileNotFoundError(f"need at least 2 frames in {folder}")
    return frames


def run(args: argparse.Namespace) -> Dict[str, Any]:
    sequences = {name: load_sequence(args.data_dir / rel) for name, rel in SEQUENCES.items() if name in args.sequences}
    mask_area = {seq: {name: float(np.mean([f["masks"][name].float().mean().item() for f in frames]))
                       for name in DETECTORS} | {"issue": float(np.mean([f["issue"].mean() for f in frames]))}
                 for seq, frames in sequences.items()}
    results: Dict[str, Any] = {}
    per_pair: Dict[str, Any] = {}
    cache: Dict[str, Any] = {}
    checked = False
    for feature in args.features:
        extractor = build_extractor(feature, max_num_keypoints=args.max_keypoints, resize=args.resize,
                                    mask_margin=args.mask_margin).eval()
        matcher = LightGlue(features=feature, mask_margin=args.mask_margin, weights=args.weights, mp=args.bf16).eval()
        for seq, frames in sequences.items():
            feats = [extractor.extract(f["rgb"]) for f in tqdm(frames, desc=f"{feature} {seq} extract", unit="frame")]
            pairs = [(i, i + gap) for gap in args.gaps for i in range(len(frames) - gap)]
            if args.figure_only:
                pairs = [(args.figure_pair, args.figure_pair + 1)]
            records: Dict[str, List[Dict[str, Any]]] = {}
            for i, j in tqdm(pairs, desc=f"{feature} {seq} match", unit="pair"):
                fa, fb = frames[i], frames[j]
                ka, kb = feats[i]["keypoints"][0].numpy(), feats[j]["keypoints"][0].numpy()
                issue = (fa["issue"], fb["issue"])
                rows: Dict[str, Dict[str, Any]] = {}
                m = run_matcher(matcher, feats[i], feats[j], "off")
                rows["off"] = score(ka, kb, m, issue, (fa["near"]["default"], fb["near"]["default"]))
                cache[(feature, seq, i, j, "off")] = (ka, kb, m)
                for det in DETECTORS:
                    masks = (fa["masks"][det], fb["masks"][det])
                    near = (fa["near"][det], fb["near"][det])
                    if not checked:
                        real = extractor.extract(fa["rgb"], specular_mask=masks[0])
                        if not torch.equal(real["keypoints"], suppress(feats[i], masks[0], args.mask_margin)["keypoints"]):
                            raise RuntimeError("suppress() disagrees with Extractor.extract(specular_mask=...)")
                        checked = True
                    for mode in MATCH_MODES:
                        if mode == "extract":
                            sa, sb = suppress(feats[i], masks[0], args.mask_margin), suppress(feats[j], masks[1], args.mask_margin)
                            m = run_matcher(matcher, sa, sb, "off")
                            kk = (sa["keypoints"][0].numpy(), sb["keypoints"][0].numpy())
                        else:
                            given = [soft_mask(x, args.soft_sigma) for x in masks] if mode == "soft" else masks
                            m = run_matcher(matcher, feats[i], feats[j], mode, given[0], given[1])
                            kk = (ka, kb)
                        rows[f"{det}/{mode}"] = score(kk[0], kk[1], m, issue, near)
                        cache[(feature, seq, i, j, f"{det}/{mode}")] = (kk[0], kk[1], m)
                for key, rec in rows.items():
                    records.setdefault(key, []).append(dict(rec, pair=[fa["name"], fb["name"]]))
            results.setdefault(feature, {})[seq] = {k: aggregate(v) for k, v in records.items()}
            per_pair.setdefault(feature, {})[seq] = records
    return {"results": results, "per_pair": per_pair, "mask_area": mask_area,
            "_cache": cache, "_sequences": sequences}


# --------------------------------------------------------------------------- figure


def _upscale(rgb: np.ndarray, mask: np.ndarray, kpts: np.ndarray, f: int):
    """Image, mask and keypoints ``f`` times larger (pixel-centre convention)."""
    big = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    big_mask = cv2.resize(mask.astype(np.uint8), None, fx=f, fy=f, interpolation=cv2.INTER_NEAREST) > 0
    return big, big_mask, (kpts + 0.5) * f - 0.5


def write_figure(report: Dict[str, Any], args: argparse.Namespace) -> Optional[Path]:
    """Two rows (mode off, mode hard with the default detector) of one laparoscopic pair."""
    sequences, cache = report["_sequences"], report["_cache"]
    if "laparoscopic" not in sequences:
        return None
    frames = sequences["laparoscopic"]
    i, j = args.figure_pair, args.figure_pair + 1
    feature = args.features[0]
    figures = []
    for mode in ("off", "default/hard"):
        ka, kb, m = cache[(feature, "laparoscopic", i, j, mode)]
        rec = next(r for r in report["per_pair"][feature]["laparoscopic"][mode]
                   if r["pair"] == [frames[i]["name"], frames[j]["name"]])
        inl = np.zeros(len(m), dtype=bool)
        if rec["homography"] is not None and len(m):
            cv2.setRNGSeed(0)
            inl = estimate_homography(ka[m[:, 0]], kb[m[:, 1]], RANSAC_PX).inliers
        f = args.figure_scale
        a, ma, ka2 = _upscale(frames[i]["rgb"], frames[i]["masks"]["default"].numpy(), ka, f)
        b, mb, kb2 = _upscale(frames[j]["rgb"], frames[j]["masks"]["default"].numpy(), kb, f)
        label = "off, no masks" if mode == "off" else "hard, detector masks +%d px" % args.mask_margin
        caption = (f"{feature.upper()} {frames[i]['name']}->{frames[j]['name']}, mode {label}; "
                   f"on glare: grey > 225 + 5 px, {rec['glare_outliers']} of them outliers")
        # the matches on glare (the issue's definition) thick in orange over the faded others
        on = (lookup(frames[i]["issue"], ka[m[:, 0]]) | lookup(frames[j]["issue"], kb[m[:, 1]])
              if len(m) else np.zeros(0, bool))
        figures.append(plot_matches(a, b, ka2, kb2, m, inliers=inl, mask0=ma, mask1=mb, caption=caption,
                                    emphasis=on, emphasis_label="on glare (orange)", linewidth=0.6,
                                    max_width=2000))
    return save_stacked(figures, args.figure, gap_px=12)


# --------------------------------------------------------------------------- report


def format_tables(report: Dict[str, Any], conf: Dict[str, Any]) -> str:
    lines: List[str] = []
    for feature, by_seq in report["results"].items():
        for seq, rows in by_seq.items():
            n = next(iter(rows.values()))["pairs"]
            area = report["mask_area"][seq]
            lines += [
                f"### {feature.upper()}, {seq} ({n} pairs, gaps {conf['gaps']}; glare area: default "
                f"{area['default']:.2%}, bright190 {area['bright190']:.2%}, issue mask {area['issue']:.2%})",
                "",
                "| masks | mode | matches | glare (issue) | glare (mask) | inlier ratio | inliers | glare outl. |",
                "|---|---|---:|---:|---:|---:|---:|---:|",
            ]
            for key, r in rows.items():
                det, mode = key.split("/") if "/" in key else ("-", key)
                lines.append(
                    f"| {det} | {mode} | {r['matches']:.0f} | {r['on_glare_issue']:.1%} | {r['on_glare_mask']:.1%} | "
                    f"{r['inlier_ratio']:.1%} | {r['inliers']:.0f} | {r['glare_outliers']:.1f} |"
                )
            lines.append("")
    return "\n".join(lines)


DEFINITIONS = """\
Definitions: *glare (issue)* = share of matches with a keypoint (either image) on grey > 225
dilated by 5 px; *glare (mask)* = share with a keypoint within 5 px of the mask given to the
matcher in that row (`off`: the default detector's); *inlier ratio* = MAGSAC++ homography
(3 px) inliers / matches, mean over pairs; *inliers* = per pair; *glare outl.* = per pair,
matches on the issue's glare mask that are RANSAC outliers. Masks: `default` = `detect(image)`
(highlight), `bright` = grey > 225, `bright190` = grey > 190. `soft` = max(mask, GaussianBlur(mask, sigma={sigma:g} px));
`extract` = keypoints in the mask removed at extraction, then `off`. Matcher and extractor
`mask_margin` = {margin} px; features at {resize}, at most {kp} keypoints."""


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", nargs="+", default=["aliked", "disk"], choices=["aliked", "disk"])
    parser.add_argument("--sequences", nargs="+", default=list(SEQUENCES), choices=list(SEQUENCES))
    parser.add_argument("--gaps", type=int, nargs="+", default=[1], help="match frame i to i + gap")
    parser.add_argument("--max-keypoints", type=int, default=1024)
    parser.add_argument("--resize", type=int, default=None, help="long side for extraction (default: native)")
    parser.add_argument("--mask-margin", type=int, default=3, help="LightGlue / extractor mask_margin (px)")
    parser.add_argument("--soft-sigma", type=float, default=2.0, help="blur of the soft mask (px)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--figure", type=Path, default=None, help="PNG of one laparoscopic pair (off vs hard)")
    parser.add_argument("--figure-pair", type=int, default=5, help="index i of the figure pair (frame i -> i+1)")
    parser.add_argument("--figure-scale", type=int, default=2, help="upscale the 320x240 frames for legibility")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="matcher checkpoint (e.g. from specglue train; one --features); default: official")
    parser.add_argument("--bf16", action="store_true",
                        help="match under bf16 autocast (LightGlue(mp=True)); features stay fp32")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=None, help="JSON output (Markdown next to it as .md)")
    parser.add_argument("--figure-only", action="store_true",
                        help="only match the figure pair (first feature, laparoscopic) and write --figure")
    args = parser.parse_args(argv)
    if args.figure_only:
        if args.figure is None:
            parser.error("--figure-only needs --figure")
        args.features, args.sequences, args.out = args.features[:1], ["laparoscopic"], None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    report = run(args)
    figure = write_figure(report, args) if args.figure is not None else None
    seconds = time.perf_counter() - start
    conf = {"features": args.features, "sequences": args.sequences, "gaps": args.gaps,
            "max_keypoints": args.max_keypoints, "resize": args.resize, "mask_margin": args.mask_margin,
            "soft_sigma": args.soft_sigma, "detectors": DETECTORS, "issue_glare": ISSUE_GLARE,
            "near_px": NEAR_PX, "ransac_px": RANSAC_PX, "torch_threads": args.threads, "bf16": args.bf16,
            "figure": str(figure) if figure else None, "seconds": round(seconds, 1)}
    text = format_tables(report, conf)
    definitions = DEFINITIONS.format(sigma=args.soft_sigma, margin=args.mask_margin,
                                     resize="native 320x240" if args.resize is None else f"long side {args.resize}",
                                     kp=args.max_keypoints)
    print(text)
    print(f"{definitions}\n\nRuntime: {seconds:.0f} s")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        public = {k: v for k, v in report.items() if not k.startswith("_")}
        public["config"] = conf
        args.out.write_text(json.dumps(jsonable(public), indent=1, allow_nan=False))
        cmd = "python benchmarks/real_glare.py " + " ".join(argv if argv is not None else sys.argv[1:])
        md = (f"# Real glare: laparoscopic and phantom sequences\n\nCommand: `{cmd}` ({seconds:.0f} s, "
              f"{args.threads} threads of {cpu_model()})\n\n{definitions}\n\n{text}\n")
        args.out.with_suffix(".md").write_text(md)
        logger.info("wrote %s and %s", args.out, args.out.with_suffix(".md"))
    return report


if __name__ == "__main__":
    main()
