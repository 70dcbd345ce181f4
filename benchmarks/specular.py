"""Synthetic-glare benchmark of the specular modes of ``specglue.LightGlue``.

Protocol
--------
Each *pair* is one real photo without natural glare (``PHOTOS``: under 1 % of its pixels have
grey > 225 at 640 px, so the detector has little to find before highlights are added),
resized to ``--long-side`` px (640) and warped by a random homography
(``specglue.geometry.sample_homography``, default ranges, seeded): image 0 is the photo, image 1
its warp, ``H_gt`` maps image 0 to image 1. Highlights are then drawn on both images with
``specglue.specular.synthesize_pair`` (``--num-blobs`` 10..30 blobs and ``--streaks`` 2..6
streaks per image, about 2-3 % of the pixels, like the > 225 glare area of the laparoscopic
frames; the library default of 3..12 blobs covers ~1 % and barely changes any result) in two
placements:

- ``independent``: unrelated highlights in each image (the light moved);
- ``camera_fixed``: the same highlights at nearly the same image position in both images (the
  endoscopy case: the light rides with the camera, so glare does not follow the homography).

Mask margin: detectors fire on the *rim* of a highlight (where the flat white core meets the
texture), mostly 1-3 px outside the mask (alpha >= 0.5), not inside it. With the library default
``mask_margin=0`` only a handful of keypoints per image count as specular and every mode is
nearly ``off``; the benchmark therefore uses ``--mask-margin 3`` (matcher and extractor alike),
the same radius as the "touches a highlight" metric.

Features are the official ALIKED / DISK with their official LightGlue weights
(``LightGlue(features=...)``), ``--max-keypoints`` per image, extracted at the photo's size.

Modes (``specular_mode`` of the matcher, and one extractor-side variant):

- ``off``: plain LightGlue, masks ignored;
- ``hard`` / ``cross`` / ``filter``: the binary mask;
- ``soft``: a soft mask ``max(mask, GaussianBlur_sigma(mask))`` (sigma ``--soft-sigma`` = 2 px):
  1 on the mask, then a halo that fades to 0 within about 3 sigma of it;
- ``extract``: the keypoints whose nearest pixel lies in the mask are removed at extraction
  (``Extractor.extract(image, specular_mask=mask)``; the detections are not re-filled, so it is
  computed here by removing them from the unmasked extraction with the extractor's own rule,
  checked once against the real call) and the rest matched with ``off``.

Masks given to the matcher, two blocks: ``gt`` (the exact synthetic masks) and ``detected``
(``specglue.specular.detect(image)`` with the default method on the image with glare, what a
user gets). ``off`` ignores masks, so it appears once. A ``clean`` reference row matches the
same pair without any highlight (mode ``off``); the ``ceiling`` row keeps those clean matches
that do not touch the placement's highlights (the same rule as ``on hl``): what any method that
refuses every match on a highlight can at most keep, if glare changed nothing else.

Metrics (pooled over the pairs of a table):

- ``matches``: mean matches per pair;
- ``on hl``: share of matches that *touch a highlight*: the keypoint in image 0 is within
  ``--touch-px`` (3) px (Euclidean, from its nearest pixel) of a pixel of the *true* synthetic
  mask of image 0, or the keypoint in image 1 is within 3 px of the true mask of image 1
  (whatever mask the matcher was given);
- ``hl wrong``: mean matches per pair that touch a highlight and are wrong (error > 3 px);
- ``P@3px``: precision, matches whose symmetric reprojection error under ``H_gt``
  (``specglue.geometry.reprojection_error``) is below 3 px, over all matches (pooled);
- ``correct``: mean correct matches per pair;
- ``AUC@1/3/5``: area under the cumulative corner-error curve at 1 / 3 / 5 px
  (``specglue.geometry.error_auc``); the homography is ``estimate_homography`` (MAGSAC++,
  3 px) on all matches, its error ``corner_error`` against ``H_gt``; failures count as inf.

Usage (from the repository root; one feature per run: 21 pairs take ~2.5 min with ALIKED and
~8 min with DISK on 2 idle CPU cores, several times longer on a busy machine):
    python benchmarks/specular.py --features aliked --pairs 21 --out benchmarks/results/specular_aliked.json
    python benchmarks/specular.py --features disk --pairs 21 --out benchmarks/results/specular_disk.json
    python benchmarks/specular.py --features aliked --pairs 21 --mask-margin 0 \
        --out benchmarks/results/specular_aliked_margin0.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from specglue import LightGlue
from specglue.eval.data import SPECULAR_PLACEMENTS
from specglue.features import build_extractor
from specglue.geometry import (
    corner_error,
    error_auc,
    estimate_homography,
    reprojection_error,
    sample_homography,
    warp_image,
)
from specglue.confs import SPECULAR_MODES
from specglue.specular import DEFAULT_METHOD, detect, synthesize_pair

from glare_common import distance_to_mask, jsonable, lookup, run_matcher, soft_mask, suppress  # benchmarks/ is on sys.path

logger = logging.getLogger("benchmarks.specular")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

#: Photos with little natural glare: under 1 % of pixels with grey > 225 at 640 px
#: (0.00 % to 0.93 %; most landmark photos of 02 / 04 have bright sky or white stone).
PHOTOS = (
    "01_lightglue_assets/DSC_0410.JPG",
    "01_lightglue_assets/DSC_0411.JPG",
    "01_lightglue_assets/sacre_coeur1.jpg",
    "01_lightglue_assets/sacre_coeur2.jpg",
    "02_hloc_sacre_coeur/mapping/17295357_9106075285.jpg",
    "02_hloc_sacre_coeur/mapping/93341989_396310999.jpg",
    "04_superglue_phototourism_pairs/images/piazza_san_marco_58751010_4849458397.jpg",
)
PLACEMENTS = SPECULAR_PLACEMENTS
#: the matcher modes, then masking at extraction (keypoints on masks dropped before matching)
MODES = SPECULAR_MODES + ("extract",)
MASK_SOURCES = ("gt", "detected")
CORRECT_PX = 3.0
AUC_PX = (1.0, 3.0, 5.0)


# --------------------------------------------------------------------------- helpers


def load_rgb(path: Path, long_side: Optional[int]) -> torch.Tensor:
    """``[3, H, W]`` float RGB in [0, 1], shrunk (area) to ``long_side`` px if larger."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if long_side is not None and max(bgr.shape[:2]) > long_side:
        scale = long_side / max(bgr.shape[:2])
        size = (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0


def score(k0: np.ndarray, k1: np.ndarray, matches: np.ndarray, H_gt: np.ndarray, size: Sequence[int],
          dist0: Optional[np.ndarray], dist1: Optional[np.ndarray], touch_px: float) -> Dict[str, Any]:
    """Counts and corner error of one matched pair (see the module docstring)."""
    p0, p1 = k0[matches[:, 0]], k1[matches[:, 1]]
    n = len(matches)
    if n:
        err = np.asarray(reprojection_error(p0, p1, H_gt))
        correct = err < CORRECT_PX
    else:
        correct = np.zeros(0, dtype=bool)
    if dist0 is not None and n:
        touch = (lookup(dist0, p0) <= touch_px) | (lookup(dist1, p1) <= touch_px)
    else:
        touch = np.zeros(n, dtype=bool)
    cv2.setRNGSeed(0)
    geo = estimate_homography(p0, p1, CORRECT_PX) if n >= 4 else None
    cerr = corner_error(geo.model if geo is not None else None, H_gt, *size)
    return {
        "matches": int(n),
        "correct": int(correct.sum()),
        "touch": int(touch.sum()),
        "touch_wrong": int((touch & ~correct).sum()),
        "corner_error": float(cerr),
    }


def aggregate(records: List[Dict[str, Any]]) -> Dict[str, float]:
    """Pool per-pair scores of one table row."""
    m = sum(r["matches"] for r in records)
    n = max(1, len(records))
    aucs = error_auc([r["corner_error"] for r in records], AUC_PX)
    return {
        "pairs": len(records),
        "matches": m / n,
        "on_highlight": sum(r["touch"] for r in records) / max(1, m),
        "on_highlight_per_pair": sum(r["touch"] for r in records) / n,
        "highlight_wrong_per_pair": sum(r["touch_wrong"] for r in records) / n,
        "precision": sum(r["correct"] for r in records) / max(1, m),
        "correct": sum(r["correct"] for r in records) / n,
        **{f"auc@{t:g}px": a for t, a in zip(AUC_PX, aucs)},
    }


# --------------------------------------------------------------------------- benchmark


def row_keys() -> List[tuple]:
    """Rows of a table: (mask source, mode); the clean reference first, off once."""
    rows = [("none", "clean"), ("none", "ceiling"), ("none", "off")]
    for source in MASK_SOURCES:
        rows += [(source, mode) for mode in MODES if mode != "off"]
    return rows


def run(args: argparse.Namespace) -> Dict[str, Any]:
    torch.manual_seed(args.seed)
    pairs = []
    for i in range(args.pairs):
        rel = PHOTOS[i % len(PHOTOS)]
        image0 = load_rgb(args.data_dir / rel, args.long_side)
        h, w = image0.shape[-2:]
        H = sample_homography(h, w, rng=args.seed * 100003 + i)
        image1 = warp_image(image0, H).clamp(0, 1)
        glare = {p: synthesize_pair(image0, image1, placement=p, num_blobs=tuple(args.num_blobs),
                                    streaks=tuple(args.streaks), seed=args.seed * 1009 + 7 * i + k)
                 for k, p in enumerate(PLACEMENTS)}
        pairs.append({"photo": rel, "H": H, "image0": image0, "image1": image1, "glare": glare})

    # Detected masks and the detector's agreement with the truth (feature independent).
    detector_iou = {}
    for placement in PLACEMENTS:
        tp = fp = fn = 0
        for pair in pairs:
            g = pair["glare"][placement]
            det = [detect(g.image0), detect(g.image1)]
            pair.setdefault("detected", {})[placement] = det
            for d, t in zip(det, (g.mask0, g.mask1)):
                tp += int((d & t).sum()); fp += int((d & ~t).sum()); fn += int((~d & t).sum())
        detector_iou[placement] = {"iou": tp / max(1, tp + fp + fn), "precision": tp / max(1, tp + fp),
                                   "recall": tp / max(1, tp + fn)}

    results: Dict[str, Any] = {}
    per_pair: Dict[str, Any] = {}
    checked = False
    for feature in args.features:
        extractor = build_extractor(feature, max_num_keypoints=args.max_keypoints, resize=None,
                                    mask_margin=args.mask_margin).eval()
        matcher = LightGlue(features=feature, mask_margin=args.mask_margin, weights=args.weights).eval()
        records: Dict[tuple, List[Dict[str, Any]]] = {}
        for idx, pair in enumerate(tqdm(pairs, desc=f"{feature} pairs", unit="pair")):
            H, size = pair["H"], (pair["image0"].shape[-1], pair["image0"].shape[-2])
            clean = [extractor.extract(pair["image0"]), extractor.extract(pair["image1"])]
            k = [c["keypoints"][0].numpy() for c in clean]
            clean_matches = run_matcher(matcher, clean[0], clean[1], "off")
            clean_score = score(k[0], k[1], clean_matches, H, size, None, None, args.touch_px)
            for placement in PLACEMENTS:
                g = pair["glare"][placement]
                feats = [extractor.extract(g.image0), extractor.extract(g.image1)]
                kp = [f["keypoints"][0].numpy() for f in feats]
                dist = [distance_to_mask(g.mask0), distance_to_mask(g.mask1)]
                rows: Dict[tuple, Dict[str, Any]] = {("none", "clean"): clean_score}
                touching = ((lookup(dist[0], k[0][clean_matches[:, 0]]) <= args.touch_px)
                            | (lookup(dist[1], k[1][clean_matches[:, 1]]) <= args.touch_px))
                rows[("none", "ceiling")] = score(k[0], k[1], clean_matches[~touching], H, size, dist[0], dist[1],
                                                  args.touch_px)
                rows[("none", "off")] = score(kp[0], kp[1], run_matcher(matcher, feats[0], feats[1], "off"),
                                              H, size, dist[0], dist[1], args.touch_px)
                for source in MASK_SOURCES:
                    masks = [g.mask0, g.mask1] if source == "gt" else pair["detected"][placement]
                    if not checked:  # the "extract" shortcut equals the real extractor call
                        real = extractor.extract(g.image0, specular_mask=masks[0])
                        mine = suppress(feats[0], masks[0], args.mask_margin)
                        if not torch.equal(real["keypoints"], mine["keypoints"]):
                            raise RuntimeError("suppress() disagrees with Extractor.extract(specular_mask=...)")
                        checked = True
                    for mode in MODES[1:]:
                        if mode == "extract":
                            s0, s1 = (suppress(f, m, args.mask_margin) for f, m in zip(feats, masks))
                            m = run_matcher(matcher, s0, s1, "off")
                            kk = [s0["keypoints"][0].numpy(), s1["keypoints"][0].numpy()]
                        else:
                            given = [soft_mask(m, args.soft_sigma) for m in masks] if mode == "soft" else masks
                            m = run_matcher(matcher, feats[0], feats[1], mode, given[0], given[1])
                            kk = kp
                        rows[(source, mode)] = score(kk[0], kk[1], m, H, size, dist[0], dist[1], args.touch_px)
                for key, rec in rows.items():
                    rec = dict(rec, pair=idx, photo=pair["photo"])
                    records.setdefault((placement,) + key, []).append(rec)
        results[feature] = {
            placement: {f"{src}/{mode}": aggregate(records[(placement, src, mode)]) for src, mode in row_keys()}
            for placement in PLACEMENTS
        }
        per_pair[feature] = {"/".join(k): v for k, v in records.items()}
    return {"results": results, "per_pair": per_pair, "detector_vs_truth": detector_iou}


# --------------------------------------------------------------------------- report


ROW_LABEL = {"clean": "clean (no glare), off", "ceiling": "ceiling: clean, off the highlights", "off": "off"}


def format_tables(report: Dict[str, Any]) -> str:
    conf = report["config"]
    lines: List[str] = []
    for feature, by_placement in report["results"].items():
        for placement, rows in by_placement.items():
            n = next(iter(rows.values()))["pairs"]
            lines += [
                f"### {feature.upper()}, placement `{placement}` ({n} pairs, {conf['max_keypoints']} keypoints, "
                f"{conf['long_side']} px)",
                "",
                "| masks | mode | matches | on hl | hl wrong | P@3px | correct | AUC@1 | AUC@3 | AUC@5 |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for key, r in rows.items():
                source, mode = key.split("/")
                label = ROW_LABEL.get(mode, mode)
                lines.append(
                    f"| {source if source != 'none' else '-'} | {label} | {r['matches']:.0f} | "
                    f"{r['on_highlight']:.1%} | {r['highlight_wrong_per_pair']:.1f} | {r['precision']:.1%} | "
                    f"{r['correct']:.0f} | {r['auc@1px']:.3f} | {r['auc@3px']:.3f} | {r['auc@5px']:.3f} |"
                )
            lines += ["", verdict(rows), ""]
    det = report["detector_vs_truth"]
    lines.append("Detector (`detect(image)`, method `%s`) vs the synthetic masks, pixels pooled: " % DEFAULT_METHOD
                 + "; ".join(f"{p}: IoU {d['iou']:.2f}, precision {d['precision']:.2f}, recall {d['recall']:.2f}"
                             for p, d in det.items()) + ".")
    return "\n".join(lines)


def verdict(rows: Dict[str, Dict[str, float]]) -> str:
    """One line naming the best masked row by AUC@5 (then precision) against ``off``."""
    candidates = {k: r for k, r in rows.items() if not k.startswith("none/")}
    off = rows["none/off"]
    out = []
    for source in MASK_SOURCES:
        cand = {k: r for k, r in candidates.items() if k.startswith(source + "/")}
        best = max(cand, key=lambda k: (round(cand[k]["auc@5px"], 3), cand[k]["precision"]))
        b = cand[best]
        out.append(f"{source} masks: best `{best.split('/')[1]}` (AUC@5 {b['auc@5px']:.3f} vs off "
                   f"{off['auc@5px']:.3f}, P@3px {b['precision']:.1%} vs {off['precision']:.1%})")
    return "Best by AUC@5 then precision: " + "; ".join(out) + "."


DEFINITIONS = """\
Definitions: *on hl* = share of matches with a keypoint within {touch:g} px (Euclidean) of the
true synthetic highlight mask of its image; *hl wrong* = such matches with error > 3 px, per pair;
*P@3px* = matches with symmetric reprojection error < 3 px under the true homography, pooled;
*correct* = those per pair; *AUC@t* = area under the corner-error curve up to t px of the
MAGSAC++ (3 px) homography. Masks `gt` = exact synthetic masks, `detected` = `detect(image)`
(default method) on the image with glare; `soft` gets max(mask, GaussianBlur(mask, sigma={sigma:g} px));
`extract` drops the keypoints in the mask at extraction and matches with `off`. Matcher
`mask_margin` = {margin} px."""


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", nargs="+", default=["aliked", "disk"], choices=["aliked", "disk"])
    parser.add_argument("--pairs", "--homographies", dest="pairs", type=int, default=21,
                        help="synthetic pairs (one random homography each; photos are cycled)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-keypoints", type=int, default=1024)
    parser.add_argument("--long-side", type=int, default=640, help="photos are shrunk to this long side (px)")
    parser.add_argument("--mask-margin", type=int, default=3,
                        help="LightGlue / extractor mask_margin (px); 0 flags almost nothing (see docstring)")
    parser.add_argument("--num-blobs", type=int, nargs=2, default=(10, 30), help="highlight blobs per image (min max)")
    parser.add_argument("--streaks", type=int, nargs=2, default=(2, 6), help="highlight streaks per image (min max)")
    parser.add_argument("--soft-sigma", type=float, default=2.0, help="blur of the soft mask (px)")
    parser.add_argument("--touch-px", type=float, default=3.0, help="'touches a highlight' radius (px)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="matcher checkpoint (e.g. from specglue train; one --features); default: official")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output (the Markdown goes next to it with suffix .md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    report = run(args)
    seconds = time.perf_counter() - start
    report["config"] = {
        "features": args.features, "pairs": args.pairs, "seed": args.seed, "max_keypoints": args.max_keypoints,
        "long_side": args.long_side, "mask_margin": args.mask_margin, "soft_sigma": args.soft_sigma,
        "touch_px": args.touch_px, "num_blobs": list(args.num_blobs), "streaks": list(args.streaks), "photos": list(PHOTOS), "placements": list(PLACEMENTS),
        "detector": DEFAULT_METHOD, "torch_threads": args.threads, "seconds": round(seconds, 1),
    }
    text = format_tables(report)
    definitions = DEFINITIONS.format(touch=args.touch_px, sigma=args.soft_sigma, margin=args.mask_margin)
    print(text)
    print(f"\n{definitions}\n\nRuntime: {seconds:.0f} s")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(jsonable(report), indent=1, allow_nan=False))
        cmd = "python benchmarks/specular.py " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
        md = (f"# Synthetic glare benchmark\n\nCommand: `{cmd}` ({seconds:.0f} s, {args.threads} CPU threads)\n\n"
              f"{definitions}\n\n{text}\n")
        args.out.with_suffix(".md").write_text(md)
        logger.info("wrote %s and %s", args.out, args.out.with_suffix(".md"))
    return report


if __name__ == "__main__":
    main()
