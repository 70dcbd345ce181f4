"""Score the specular-highlight detectors of ``specglue.specular.detect`` (every method of
``METHOD_DEFAULTS`` unless ``--methods`` says otherwise), in four parts (``--parts``):

(a) Synthetic: highlights from ``specglue.specular.synthesize`` are drawn on real photos
    without natural glare (``SYNTHETIC_PHOTOS``, ``--draws`` draws each, long side
    ``--long-side`` px), in both placements of ``sample_highlights``: ``uniform`` (centres
    anywhere) and ``center`` (Gaussian around the image centre). The detected mask is compared
    with the synthetic mask: pixel IoU, F1, precision and recall pooled over the images, and the
    mean per-image IoU, per placement and pooled over both.
(b) Everyday photos: the 20 photos of ``EVERYDAY_PHOTOS`` (no injected highlights, so every
    masked keypoint is lost for nothing): the share of ALIKED keypoints (1024, the extractor's
    default resize to 1024 px) whose nearest pixel lies in the mask detected on the
    full-resolution photo, grown by the matcher's 3 px margin. Median, mean and max over the
    photos, and the photo of the max.
(c) Real glints: the laparoscopic (10) and phantom (12) sequences (12 frames of 320x240 each,
    consecutive pairs i -> i+1, no ground truth). ALIKED (2048, native size) and
    ``LightGlue(features="aliked", mask_margin=3)``, once with ``specular_mode="off"`` and once
    per method in ``"hard"`` mode with that method's masks. Per method: the share of keypoints
    masked (3 px margin), the share of the frame flagged, and the share of the ``off`` matches
    removed (1 - mean matches hard / mean matches off); per row (``off`` and each method): the
    share of matches on glare as ``real_glare.py`` defines it (a keypoint of the match, in either
    image, on ``detect(image, "bright", threshold=225, dilate=5)``).
(d) EAD2019: the frames in ``09_ead2019_endoscopy_artefacts_specularity/frames_bbox``
    carry YOLO boxes (class 0 = specularity, only in frame 00017). We report the share of
    specularity boxes that contain at least one detected pixel, the mean share of box
    area detected, and the share of detected area that falls outside every
    specularity box, both in 00017 alone and pooled over all five frames (the other
    frames show unannotated glints, so their "outside" area is not all error), and
    outside every specularity or saturation (class 1) box. Note that the two annotated
    specularity glints are small sparkles whose grey level stays below 190.

Usage (from the repository root):
    PYTHONPATH=benchmarks python benchmarks/detector.py [--methods M ...] [--parts a b c d] \
        [--draws 3] [--long-side 512] [--device cpu] --out /tmp/specglue_bench/detector.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from specglue import LightGlue
from specglue.features import build_extractor
from specglue.images import load_image
from specglue.specular import detect, synthesize
from specglue.specular.detect import METHOD_DEFAULTS

from glare_common import ISSUE_GLARE, in_mask, jsonable, lookup, run_matcher  # benchmarks/ is on sys.path

logger = logging.getLogger("benchmarks.detector")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
PARTS = ("a", "b", "c", "d")

#: Photos with little natural glare: under 0.6% of pixels with grey > 225 at 512 px.
#: (Bright sky, white walls or lamps would count as false detections.)
SYNTHETIC_PHOTOS = (
    "01_lightglue_assets/DSC_0410.JPG",
    "01_lightglue_assets/DSC_0411.JPG",
    "01_lightglue_assets/sacre_coeur1.jpg",
    "01_lightglue_assets/sacre_coeur2.jpg",
    "02_hloc_sacre_coeur/mapping/93341989_396310999.jpg",
    "03_superglue_scannet_pairs_gt/images/scene0743_00_frame-000000.jpg",
    "03_superglue_scannet_pairs_gt/images/scene0743_00_frame-001275.jpg",
    "03_superglue_scannet_pairs_gt/images/scene0744_00_frame-000585.jpg",
    "03_superglue_scannet_pairs_gt/images/scene0744_00_frame-002310.jpg",
    "03_superglue_scannet_pairs_gt/images/scene0752_00_frame-000075.jpg",
    "03_superglue_scannet_pairs_gt/images/scene0752_00_frame-001440.jpg",
    "03_superglue_scannet_pairs_gt/images/scene0768_00_frame-001095.jpg",
    "04_superglue_phototourism_pairs/images/piazza_san_marco_58751010_4849458397.jpg",
)
#: the placements of ``sample_highlights`` scored in part (a)
PLACEMENTS = ("uniform", "center")
#: Part (b): glob patterns of the everyday photos (4 + 10 + 6), read at full resolution.
EVERYDAY_PHOTOS = (
    "01_lightglue_assets/*.[jJ][pP][gG]",
    "02_hloc_sacre_coeur/mapping/*.jpg",
    "06_oxford_graffiti_homography/img*.png",
)
EAD_DIR = "09_ead2019_endoscopy_artefacts_specularity/frames_bbox"
GLINT_SEQUENCES = {
    "laparoscopic": "10_laparoscopic_cholecystectomy_sequence_rvim/frames",
    "phantom": "12_phantom_bowel_metal_instrument_sequence_rvim/frames",
}
SPECULARITY_CLASS = 0
SATURATION_CLASS = 1
#: px; the mask margin of ``LightGlue`` and of the matcher benchmarks
MASK_MARGIN = 3
EVERYDAY_KEYPOINTS = 1024
GLINT_KEYPOINTS = 2048


def load_rgb(path: Path, long_side: Optional[int] = None) -> torch.Tensor:
    """Read an image as ``[3, H, W]`` float RGB in [0, 1], optionally resized (area)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if long_side is not None and max(bgr.shape[:2]) > long_side:
        scale = long_side / max(bgr.shape[:2])
        size = (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0


def read_yolo_boxes(path: Path, height: int, width: int, cls: int) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x0, y0, x1, y1)`` (pixels, end-exclusive) of class ``cls`` in a YOLO txt file."""
    boxes = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields or int(fields[0]) != cls:
            continue
        xc, yc, w, h = (float(v) for v in fields[1:5])
        x0, x1 = int(np.floor((xc - w / 2) * width)), int(np.ceil((xc + w / 2) * width))
        y0, y1 = int(np.floor((yc - h / 2) * height)), int(np.ceil((yc + h / 2) * height))
        boxes.append((max(0, x0), max(0, y0), min(width, x1), min(height, y1)))
    return boxes


def score_synthetic(
    data_dir: Path, methods: Sequence[str], draws: int, long_side: int, device: str
) -> dict[str, dict[str, dict[str, float]]]:
    """Part (a): pixel scores per method and placement (and ``"pooled"`` over both)."""
    groups = PLACEMENTS + ("pooled",)
    counts = {m: {g: np.zeros(3) for g in groups} for m in methods}  # tp, fp, fn
    ious: dict[str, dict[str, list[float]]] = {m: {g: [] for g in groups} for m in methods}
    seconds = {m: {g: 0.0 for g in groups} for m in methods}
    for index, rel in enumerate(tqdm(SYNTHETIC_PHOTOS, desc="(a) synthetic", unit="photo")):
        image = load_rgb(data_dir / rel, long_side).to(device)  # [3, H, W]
        for method in methods:  # warm-up, so the timing leaves out first-call overhead
            detect(image, method)
        for placement in PLACEMENTS:
            for draw in range(draws):
                seed = 1000 * index + draw
                with_glare, truth = synthesize(image, num_blobs=(4, 16), streaks=(0, 3), placement=placement,
                                               seed=seed)  # [3, H, W], [H, W]
                for method in methods:
                    start = time.perf_counter()
                    pred = detect(with_glare, method)  # [H, W]
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    elapsed = time.perf_counter() - start
                    tp = (pred & truth).sum().item()
                    fp = (pred & ~truth).sum().item()
                    fn = (~pred & truth).sum().item()
                    for group in (placement, "pooled"):
                        counts[method][group] += (tp, fp, fn)
                        ious[method][group].append(tp / max(1, tp + fp + fn))
                        seconds[method][group] += elapsed
    results: dict[str, dict[str, dict[str, float]]] = {}
    for method in methods:
        for group in groups:
            tp, fp, fn = counts[method][group]
            n_images = len(ious[method][group])
            results.setdefault(method, {})[group] = {
                "iou": tp / max(1.0, tp + fp + fn),
                "f1": 2 * tp / max(1.0, 2 * tp + fp + fn),
                "precision": tp / max(1.0, tp + fp),
                "recall": tp / max(1.0, tp + fn),
                "mean_image_iou": float(np.mean(ious[method][group])),
                "ms_per_image": 1000 * seconds[method][group] / n_images,
                "images": n_images,
            }
    return results


def everyday_photos(data_dir: Path) -> list[str]:
    """The photos of part (b), relative to ``data_dir``, in ``EVERYDAY_PHOTOS`` order."""
    photos = []
    for pattern in EVERYDAY_PHOTOS:
        found = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.glob(pattern))
        if not found:
            raise FileNotFoundError(f"no photo matches {data_dir / pattern}")
        photos += found
    return photos


def score_everyday(data_dir: Path, methods: Sequence[str], device: str) -> dict[str, dict[str, Any]]:
    """Part (b): per method, the share of ALIKED keypoints masked on photos without glare."""
    extractor = build_extractor("aliked", max_num_keypoints=EVERYDAY_KEYPOINTS).eval().to(device)
    photos = everyday_photos(data_dir)
    shares: dict[str, list[float]] = {m: [] for m in methods}
    for rel in tqdm(photos, desc="(b) everyday", unit="photo"):
        rgb = load_image(data_dir / rel)  # [H, W, 3] uint8, full resolution
        kpts = extractor.extract(rgb)["keypoints"][0]  # [N, 2]
        for method in methods:
            mask = torch.from_numpy(detect(rgb, method)).to(device)  # [H, W]
            shares[method].append(in_mask(kpts, mask, MASK_MARGIN).sum().item() / max(1, len(kpts)))
    logger.info("(b) %d photos", len(photos))
    results = {}
    for method, values in shares.items():
        worst = int(np.argmax(values))
        results[method] = {
            "median": float(np.median(values)),
            "mean": float(np.mean(values)),
            "max": values[worst],
            "worst_photo": photos[worst],
            "per_photo": dict(zip(photos, values)),
        }
    return results


def score_glints(data_dir: Path, methods: Sequence[str], device: str) -> dict[str, dict[str, dict[str, float]]]:
    """Part (c): per sequence, the ``off`` row and one ``hard`` row per method."""
    extractor = build_extractor("aliked", max_num_keypoints=GLINT_KEYPOINTS, resize=None).eval().to(device)
    matcher = LightGlue(features="aliked", mask_margin=MASK_MARGIN).eval().to(device)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for seq, rel in GLINT_SEQUENCES.items():
        paths = sorted((data_dir / rel).glob("*.png"))
        if len(paths) < 2:
            raise FileNotFoundError(f"need at least 2 frames in {data_dir / rel}")
        frames = []
        for path in tqdm(paths, desc=f"(c) {seq} extract", unit="frame"):
            rgb = load_image(path)  # [H, W, 3] uint8
            frames.append({
                "feats": extractor.extract(rgb),
                "masks": {m: torch.from_numpy(detect(rgb, m)).to(device) for m in methods},  # [H, W]
                "issue": detect(rgb, **ISSUE_GLARE),  # [H, W] numpy
            })
        kpts = [f["feats"]["keypoints"][0] for f in frames]  # [N_i, 2]
        rows = ("off",) + tuple(methods)
        counts = {r: np.zeros(2) for r in rows}  # matches, matches on glare
        for i in tqdm(range(len(frames) - 1), desc=f"(c) {seq} match", unit="pair"):
            a, b = frames[i], frames[i + 1]
            ka, kb = kpts[i].cpu().numpy(), kpts[i + 1].cpu().numpy()
            for row in rows:
                if row == "off":
                    m = run_matcher(matcher, a["feats"], b["feats"], "off")
                else:
                    m = run_matcher(matcher, a["feats"], b["feats"], "hard", a["masks"][row], b["masks"][row])
                on_glare = lookup(a["issue"], ka[m[:, 0]]) | lookup(b["issue"], kb[m[:, 1]])  # [S]
                counts[row] += (len(m), on_glare.sum())
        pairs = len(frames) - 1
        off_matches = counts["off"][0] / pairs
        results[seq] = {"off": {"pairs": pairs, "matches": off_matches,
                                "on_glare": counts["off"][1] / max(1.0, counts["off"][0])}}
        for method in methods:
            masked = sum(in_mask(k, f["masks"][method], MASK_MARGIN).sum().item() for k, f in zip(kpts, frames))
            matches = counts[method][0] / pairs
            results[seq][method] = {
                "pairs": pairs,
                "keypoints_masked": masked / max(1, sum(len(k) for k in kpts)),
                "area": float(np.mean([f["masks"][method].float().mean().item() for f in frames])),
                "matches": matches,
                "matches_removed": 1 - matches / max(1e-9, off_matches),
                "on_glare": counts[method][1] / max(1.0, counts[method][0]),
            }
    return results


def score_ead(data_dir: Path, methods: Sequence[str], device: str) -> dict[str, dict[str, float]]:
    """Part (d): specularity box hits and detected area outside the boxes, per method."""
    frames = sorted((data_dir / EAD_DIR).glob("*.jpg"))
    if not frames:
        raise FileNotFoundError(f"no EAD2019 frames in {data_dir / EAD_DIR}")
    results = {}
    for method in methods:
        hits = boxes_total = 0
        box_cover: list[float] = []
        outside = {"all": [0, 0], "annotated": [0, 0], "glare": [0, 0]}  # [outside pixels, detected pixels]
        for frame in frames:
            image = load_rgb(frame).to(device)
            mask = detect(image, method).cpu().numpy()  # [H, W]
            boxes = read_yolo_boxes(frame.with_suffix(".txt"), *mask.shape, SPECULARITY_CLASS)
            in_box = np.zeros_like(mask)
            for x0, y0, x1, y1 in boxes:
                in_box[y0:y1, x0:x1] = True
                hits += bool(mask[y0:y1, x0:x1].any())
                box_cover.append(float(mask[y0:y1, x0:x1].mean()))
            boxes_total += len(boxes)
            counts = ((mask & ~in_box).sum(), mask.sum())
            keys = ("all", "annotated") if boxes else ("all",)
            for key in keys:
                outside[key][0] += int(counts[0])
                outside[key][1] += int(counts[1])
            for x0, y0, x1, y1 in read_yolo_boxes(frame.with_suffix(".txt"), *mask.shape, SATURATION_CLASS):
                in_box[y0:y1, x0:x1] = True
            outside["glare"][0] += int((mask & ~in_box).sum())
            outside["glare"][1] += int(mask.sum())
        results[method] = {
            "boxes_hit": hits,
            "boxes": boxes_total,
            "box_hit_rate": hits / max(1, boxes_total),
            "box_area_detected": float(np.mean(box_cover)) if box_cover else 0.0,
            "outside_share_annotated_frames": outside["annotated"][0] / max(1, outside["annotated"][1]),
            "outside_share_all_frames": outside["all"][0] / max(1, outside["all"][1]),
            "outside_spec_or_saturation_all_frames": outside["glare"][0] / max(1, outside["glare"][1]),
            "frames": len(frames),
        }
    return results


def main(
    data_dir: Path = DEFAULT_DATA_DIR,
    out: Optional[Path] = None,
    methods: Sequence[str] = tuple(METHOD_DEFAULTS),
    draws: int = 3,
    long_side: int = 512,
    device: str = "cpu",
    parts: Sequence[str] = PARTS,
) -> dict:
    """Run the ``parts``; write JSON to ``out`` and the tables to ``out`` with suffix ``.md``."""
    logger.info("data_dir=%s methods=%s parts=%s draws=%d long_side=%d device=%s",
                data_dir, methods, parts, draws, long_side, device)
    report: dict[str, Any] = {
        "config": {"methods": list(methods), "parts": list(parts), "draws": draws, "long_side": long_side,
                   "device": device, "mask_margin": MASK_MARGIN, "photos": list(SYNTHETIC_PHOTOS),
                   "placements": list(PLACEMENTS), "everyday_photos": list(EVERYDAY_PHOTOS),
                   "everyday_keypoints": EVERYDAY_KEYPOINTS, "glint_keypoints": GLINT_KEYPOINTS,
                   "issue_glare": ISSUE_GLARE},
    }
    if "a" in parts:
        report["synthetic"] = score_synthetic(data_dir, methods, draws, long_side, device)
    if "b" in parts:
        report["everyday"] = score_everyday(data_dir, methods, device)
    if "c" in parts:
        report["glints"] = score_glints(data_dir, methods, device)
    if "d" in parts:
        report["ead2019"] = score_ead(data_dir, methods, device)
    tables = format_tables(report)
    print(tables)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(jsonable(report), indent=2, allow_nan=False))
        out.with_suffix(".md").write_text(tables + "\n")
        logger.info("wrote %s and %s", out, out.with_suffix(".md"))
    return report


def format_synthetic(report: dict) -> str:
    conf = report["config"]
    lines = [
        "### (a) Synthetic highlights on real photos",
        "",
        f"| method | placement | IoU | F1 | P / R | mean img IoU | ms/img ({conf['device']}) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for method, groups in report["synthetic"].items():
        for group, s in groups.items():
            lines.append(
                f"| {method} | {group} | {s['iou']:.3f} | {s['f1']:.3f} | {s['precision']:.2f} / {s['recall']:.2f} "
                f"| {s['mean_image_iou']:.3f} | {s['ms_per_image']:.1f} |"
            )
    n = next(iter(report["synthetic"].values()))[PLACEMENTS[0]]["images"]
    lines.append(f"\n{n} images per placement ({len(conf['photos'])} photos x {conf['draws']} draws, long side "
                 f"{conf['long_side']} px); pooled = both placements. P / R = pixel precision / recall.")
    return "\n".join(lines)


def format_everyday(report: dict) -> str:
    conf = report["config"]
    rows = report["everyday"]
    lines = [
        "### (b) Keypoints masked on everyday photos (no injected highlights)",
        "",
        "| method | median | mean | max | worst photo |",
        "|---|---:|---:|---:|---|",
    ]
    for method, r in rows.items():
        lines.append(f"| {method} | {r['median']:.1%} | {r['mean']:.1%} | {r['max']:.1%} "
                     f"| {Path(r['worst_photo']).name} |")
    n = len(next(iter(rows.values()))["per_photo"])
    lines.append(f"\nShare of ALIKED keypoints ({conf['everyday_keypoints']}, default resize) on the mask "
                 f"detected at full resolution, grown by {conf['mask_margin']} px; over {n} photos.")
    return "\n".join(lines)


def format_glints(report: dict) -> str:
    conf = report["config"]
    lines = [
        "### (c) Real glints: laparoscopic and phantom sequences",
        "",
        "| sequence | masks | kpts masked | area | matches | removed | on glare |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for seq, rows in report["glints"].items():
        for row, r in rows.items():
            if row == "off":
                lines.append(f"| {seq} | off (none) | - | - | {r['matches']:.0f} | - | {r['on_glare']:.1%} |")
            else:
                lines.append(f"| {seq} | {row} (hard) | {r['keypoints_masked']:.1%} | {r['area']:.2%} "
                             f"| {r['matches']:.0f} | {r['matches_removed']:.1%} | {r['on_glare']:.1%} |")
    pairs = next(iter(report["glints"].values()))["off"]["pairs"]
    lines.append(f"\nALIKED ({conf['glint_keypoints']}, native 320x240) + LightGlue (mask_margin "
                 f"{conf['mask_margin']}), {pairs} consecutive pairs per sequence. *kpts masked*: share of "
                 f"keypoints within the mask + {conf['mask_margin']} px; *area*: share of the frame flagged; "
                 "*matches*: mean per pair; *removed*: 1 - matches / matches (off); *on glare*: share of "
                 "matches with a keypoint, in either image, on grey > 225 grown by 5 px.")
    return "\n".join(lines)


def format_ead(report: dict) -> str:
    lines = [
        "### (d) EAD2019 specularity boxes",
        "",
        "| method | spec boxes hit | box area det. | outside (00017) | outside (all 5) | outside spec+sat (all 5) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method, e in report["ead2019"].items():
        lines.append(
            f"| {method} | {e['boxes_hit']}/{e['boxes']} | {e['box_area_detected']:.1%} "
            f"| {e['outside_share_annotated_frames']:.1%} | {e['outside_share_all_frames']:.1%} "
            f"| {e['outside_spec_or_saturation_all_frames']:.1%} |"
        )
    return "\n".join(lines)


def format_tables(report: dict) -> str:
    """One Markdown table per part in ``report``."""
    formatters = {"synthetic": format_synthetic, "everyday": format_everyday, "glints": format_glints,
                  "ead2019": format_ead}
    return "\n\n".join(f(report) for key, f in formatters.items() if key in report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the shared/data folder")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path (the tables go next to it as .md)")
    parser.add_argument("--methods", nargs="+", default=list(METHOD_DEFAULTS), choices=list(METHOD_DEFAULTS))
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS, help="the parts to run")
    parser.add_argument("--draws", type=int, default=3, help="synthetic draws per photo and placement")
    parser.add_argument("--long-side", type=int, default=512, help="resize the synthetic photos to this long side (px)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(args.data_dir, args.out, args.methods, args.draws, args.long_side, args.device, args.parts)
