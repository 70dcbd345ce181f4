"""Score the specular-highlight detectors of ``specglue.specular.detect``.

(a) Synthetic: highlights from ``specglue.specular.synthesize`` are drawn on real photos
    without natural glare; the detected mask is compared with the synthetic mask
    (pixel IoU and F1, pooled over all images, and the mean per-image IoU).
(b) EAD2019: the frames in ``09_ead2019_endoscopy_artefacts_specularity/frames_bbox``
    carry YOLO boxes (class 0 = specularity, only in frame 00017). We report the share of
    specularity boxes that contain at least one detected pixel, the mean share of box
    area detected, and the share of detected area that falls outside every
    specularity box, both in 00017 alone and pooled over all five frames (the other
    frames show unannotated glints, so their "outside" area is not all error), and
    outside every specularity or saturation (class 1) box. Note that the two annotated
    specularity glints are small sparkles whose grey level stays below 190.
(c) For scale: the mean share of the frame flagged on the glint-rich laparoscopic (10)
    and phantom (12) sequences, which have no ground truth.

Usage (from the repository root):
    python benchmarks/detector.py --out /tmp/specglue_bench/detector.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from specglue.specular import detect, synthesize
from specglue.specular.detect import METHOD_DEFAULTS

logger = logging.getLogger("benchmarks.detector")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

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
EAD_DIR = "09_ead2019_endoscopy_artefacts_specularity/frames_bbox"
GLINT_SEQUENCES = (
    "10_laparoscopic_cholecystectomy_sequence_rvim/frames",
    "12_phantom_bowel_metal_instrument_sequence_rvim/frames",
)
SPECULARITY_CLASS = 0
SATURATION_CLASS = 1


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
) -> dict[str, dict[str, float]]:
    counts = {m: np.zeros(3) for m in methods}  # tp, fp, fn
    ious: dict[str, list[float]] = {m: [] for m in methods}
    seconds = {m: 0.0 for m in methods}
    n_images = 0
    for rel in SYNTHETIC_PHOTOS:
        image = load_rgb(data_dir / rel, long_side).to(device)
        for method in methods:  # warm-up, so the timing leaves out first-call overhead
            detect(image, method)
        for draw in range(draws):
            seed = 1000 * SYNTHETIC_PHOTOS.index(rel) + draw
            with_glare, truth = synthesize(image, num_blobs=(4, 16), streaks=(0, 3), seed=seed)
            n_images += 1
            for method in methods:
                start = time.perf_counter()
                pred = detect(with_glare, method)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                seconds[method] += time.perf_counter() - start
                tp = (pred & truth).sum().item()
                fp = (pred & ~truth).sum().item()
                fn = (~pred & truth).sum().item()
                counts[method] += (tp, fp, fn)
                ious[method].append(tp / max(1, tp + fp + fn))
    results = {}
    for method in methods:
        tp, fp, fn = counts[method]
        results[method] = {
            "iou": tp / max(1.0, tp + fp + fn),
            "f1": 2 * tp / max(1.0, 2 * tp + fp + fn),
            "precision": tp / max(1.0, tp + fp),
            "recall": tp / max(1.0, tp + fn),
            "mean_image_iou": float(np.mean(ious[method])),
            "ms_per_image": 1000 * seconds[method] / n_images,
            "images": n_images,
        }
    return results


def score_ead(data_dir: Path, methods: Sequence[str], device: str) -> dict[str, dict[str, float]]:
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
            mask = detect(image, method).cpu().numpy()
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


def score_glint_area(data_dir: Path, methods: Sequence[str], device: str) -> dict[str, float]:
    frames = [f for seq in GLINT_SEQUENCES for f in sorted((data_dir / seq).glob("*.png"))]
    batch = torch.stack([load_rgb(f) for f in frames]).to(device)  # all 320x240
    return {m: detect(batch, m).float().mean().item() for m in methods}


def main(
    data_dir: Path = DEFAULT_DATA_DIR,
    out: Optional[Path] = None,
    methods: Sequence[str] = tuple(METHOD_DEFAULTS),
    draws: int = 3,
    long_side: int = 512,
    device: str = "cpu",
) -> dict:
    """Run all scores; write JSON to ``out`` and the table to ``out`` with suffix ``.md``."""
    logger.info("data_dir=%s methods=%s draws=%d long_side=%d device=%s", data_dir, methods, draws, long_side, device)
    report = {
        "config": {"methods": list(methods), "draws": draws, "long_side": long_side, "device": device,
                   "photos": list(SYNTHETIC_PHOTOS)},
        "synthetic": score_synthetic(data_dir, methods, draws, long_side, device),
        "ead2019": score_ead(data_dir, methods, device),
        "glint_area": score_glint_area(data_dir, methods, device),
    }
    table = format_table(report)
    print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        out.with_suffix(".md").write_text(table + "\n")
        logger.info("wrote %s", out)
    return report


def format_table(report: dict) -> str:
    syn, ead, area = report["synthetic"], report["ead2019"], report["glint_area"]
    n = next(iter(syn.values()))["images"]
    lines = [
        f"| method | synth IoU | synth F1 | synth P / R | mean img IoU | ms/img ({report['config']['device']}) "
        "| EAD spec boxes hit | EAD box area det. | EAD outside (00017) | EAD outside (all 5) "
        "| EAD outside spec+sat (all 5) | area on 10+12 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in syn:
        s, e = syn[m], ead[m]
        lines.append(
            f"| {m} | {s['iou']:.3f} | {s['f1']:.3f} | {s['precision']:.2f} / {s['recall']:.2f} "
            f"| {s['mean_image_iou']:.3f} | {s['ms_per_image']:.1f} "
            f"| {e['boxes_hit']}/{e['boxes']} | {e['box_area_detected']:.1%} "
            f"| {e['outside_share_annotated_frames']:.1%} | {e['outside_share_all_frames']:.1%} "
            f"| {e['outside_spec_or_saturation_all_frames']:.1%} | {area[m]:.2%} |"
        )
    lines.append(f"\nSynthetic: {n} images ({len(report['config']['photos'])} photos x "
                 f"{report['config']['draws']} draws, long side {report['config']['long_side']} px).")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the shared/data folder")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path (the table goes next to it as .md)")
    parser.add_argument("--methods", nargs="+", default=list(METHOD_DEFAULTS), choices=list(METHOD_DEFAULTS))
    parser.add_argument("--draws", type=int, default=3, help="synthetic draws per photo")
    parser.add_argument("--long-side", type=int, default=512, help="resize photos to this long side (px)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(args.data_dir, args.out, args.methods, args.draws, args.long_side, args.device)
