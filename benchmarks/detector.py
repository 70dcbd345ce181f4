"""Score the specular-highlight detectors of ``specglue.specular.detect`` (every method of
``METHOD_DEFAULTS`` unless ``--methods`` says otherwise), in five parts (``--parts``):

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
    With the package photos (``HARD_PHOTOS``, fetched by ``fetch_photos`` from Debian wallpaper
    packages into ``--photo-cache``, unless ``--no-package-photos``), 8 more photos that trip naive
    detectors without any highlight: snow, lamps, the sun, clipped white facades and clouds,
    shrunk to a 2048 px long side; their mean is also reported apart.
(d) EAD2019: the frames in ``09_ead2019_endoscopy_artefacts_specularity/frames_bbox``
    carry YOLO boxes (class 0 = specularity, only in frame 00017). We report the share of
    specularity boxes that contain at least one detected pixel, the mean share of box
    area detected, and the share of detected area that falls outside every
    specularity box, both in 00017 alone and pooled over all five frames (the other
    frames show unannotated glints, so their "outside" area is not all error), and
    outside every specularity or saturation (class 1) box. Note that the two annotated
    specularity glints are small sparkles whose grey level stays below 190.

(e) Labelled real highlights: the frames of ``benchmarks/labels/highlights.json`` (sinus 13,
    laparoscopic 10, phantom 12, EAD2019 00017), whose highlight boxes were hand-checked (see the
    file's note); masks are regenerated from the boxes and the shared frames. Pixel recall and
    precision and per-blob recall and precision per data set; the sinus frames also at 960 and
    480 px wide and after a white-balance change plus JPEG re-compression.

Usage (from the repository root):
    PYTHONPATH=benchmarks python benchmarks/detector.py [--methods M ...] [--parts a b c d e] \
        [--draws 3] [--long-side 512] [--device cpu] [--photo-cache DIR | --no-package-photos] \
        --out benchmarks/results/detector.json
    PYTHONPATH=benchmarks python benchmarks/detector.py --figure docs/detector_masks.png
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import subprocess
import tarfile
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
PARTS = ("a", "b", "c", "d", "e")

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
#: Part (b), photos that trip naive detectors without any highlight (snow, lamps, the sun, clipped
#: white surfaces, bright sky), taken from Debian wallpaper packages by ``fetch_photos`` into
#: ``--photo-cache`` (not stored in the repository). (package, version fetched, path in the package,
#: licence, what it shows). Night streets with lamps were not found in any package.
HARD_PHOTOS = (
    ("lomiri-wallpapers-16.04", "20.04.0-2", "usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg",
     "CC-BY-4.0 (Aitzol Berasategi)", "snow fields on mountains, bright sky"),
    ("lomiri-wallpapers-20.04", "20.04.0-2", "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
     "CC-BY-SA-3.0 (Lukas Baubkus)", "overexposed snow-white background behind a bird"),
    ("lomiri-wallpapers-16.04", "20.04.0-2", "usr/share/backgrounds/free_by_Peter_Nerlich.jpg",
     "CC-BY-SA-4.0 (Peter Nerlich)", "lit lamp globes (light sources)"),
    ("lomiri-wallpapers-16.04", "20.04.0-2", "usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg",
     "CC-BY-4.0 (Aitzol Berasategi)", "the sun in the frame"),
    ("lomiri-wallpapers-16.04", "20.04.0-2", "usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg",
     "CC0-1.0 (Clemens Engelhardt)", "backlit dandelions against the low sun"),
    ("lomiri-wallpapers-16.04", "20.04.0-2", "usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
     "CC-BY-SA-4.0 (Sander Klootwijk)", "bright sky with white clouds"),
    ("lomiri-wallpapers-16.04", "20.04.0-2", "usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg",
     "CC-BY-4.0 (Aitzol Berasategi)", "white clouds over mountains"),
    ("plasma-workspace-wallpapers", "4:5.27.5-2", "usr/share/wallpapers/Grey/contents/images/2560x1600.jpg",
     "GPL-2+ (KDE Visual Design Group)", "clipped white facade (architecture)"),
)
#: the package photos are shrunk to this long side (px) before detection (the originals reach 6000 px)
HARD_PHOTO_LONG_SIDE = 2048
DEFAULT_PHOTO_CACHE = Path.home() / ".cache" / "specglue" / "detector_photos"
#: Part (e): hand-checked highlight boxes on real endoscopy frames (see the file's "note").
LABELS = REPO_ROOT / "benchmarks" / "labels" / "highlights.json"
#: Part (e): the sinus frames are also scored at these widths (area-downsampled), and at
#: ``PERTURBED_WIDTH`` after a white-balance change and a JPEG re-compression.
SINUS_WIDTHS = (1920, 960, 480)
PERTURBED_WIDTH = 960
WHITE_BALANCE = (1.0, 0.9, 0.8)  # gains on R, G, B
JPEG_QUALITY = 70
#: the part (e) groups whose frames are at their native size (pooled into "all (native size)")
NATIVE_GROUPS = (f"sinus {SINUS_WIDTHS[0]}", "laparoscopic", "phantom", "ead2019 00017")
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


def fetch_photos(cache: Path = DEFAULT_PHOTO_CACHE) -> list[Path]:
    """The ``HARD_PHOTOS``, extracted from their Debian packages into ``cache`` (once).

    Uses ``apt-get download`` (the packages of the machine's apt sources; run ``apt-get update``
    first on a fresh machine) and ``dpkg-deb``; the ``.deb`` files are deleted after extraction.
    Returns the photo paths in ``HARD_PHOTOS`` order.
    """
    paths = [cache / package / member for package, _, member, _, _ in HARD_PHOTOS]
    missing = sorted({package for (package, *_), path in zip(HARD_PHOTOS, paths) if not path.is_file()})
    for package in missing:
        target = cache / package
        target.mkdir(parents=True, exist_ok=True)
        members = [member for name, _, member, _, _ in HARD_PHOTOS if name == package]
        logger.info("fetching %s from the Debian archive into %s", package, target)
        try:
            subprocess.run(["apt-get", "download", package], cwd=target, check=True, capture_output=True, text=True)
        except FileNotFoundError as error:
            raise RuntimeError("apt-get is needed to fetch the part (b) photos (a Debian-based machine)") from error
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"apt-get download {package} failed (run apt-get update?): {error.stderr.strip()}") from error
        debs = sorted(target.glob(f"{package}_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download {package} left no .deb in {target}")
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[-1])], check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            for member in members:
                data = archive.extractfile("./" + member)
                if data is None:
                    raise RuntimeError(f"{member} not found in {debs[-1].name}")
                (target / member).parent.mkdir(parents=True, exist_ok=True)
                (target / member).write_bytes(data.read())
        logger.info("extracted %d photo(s) from %s", len(members), debs[-1].name)
        for deb in debs:
            deb.unlink()
    return paths


def read_labels(path: Path = LABELS) -> dict[str, dict[str, Any]]:
    """The hand-checked frames of part (e): ``{frame path relative to the data folder: entry}``."""
    labels = json.loads(path.read_text())
    return labels["frames"]


def label_masks(grey: np.ndarray, entry: dict[str, Any]) -> tuple[list[np.ndarray], np.ndarray]:
    """The labelled highlights of one frame as masks, by the labels' ``mask_rule``.

    Args:
        grey: ``[H, W]`` uint8 grey level of the frame at its native size.
        entry: the frame's labels (``highlights``: boxes ``[x0, y0, x1, y1]``; ``ignore``).

    Returns:
        One ``[H, W]`` bool mask per highlight box, and the ``[H, W]`` bool ignore mask.
    """
    h, w = grey.shape
    g = grey.astype(np.float32)
    masks = []
    for x0, y0, x1, y1 in entry["highlights"]:
        grow = max(2, (max(x1 - x0, y1 - y0) + 1) // 2)
        X0, Y0, X1, Y1 = max(0, x0 - grow), max(0, y0 - grow), min(w, x1 + grow), min(h, y1 + grow)
        ring = np.ones((Y1 - Y0, X1 - X0), bool)
        ring[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0] = False
        ring &= g[Y0:Y1, X0:X1] >= 20  # not the black border of the endoscope
        box = g[y0:y1, x0:x1]
        surround = float(np.median(g[Y0:Y1, X0:X1][ring])) if ring.any() else 0.0
        mask = np.zeros((h, w), bool)
        mask[y0:y1, x0:x1] = box >= (float(box.max()) + surround) / 2
        masks.append(mask)
    ignore = np.zeros((h, w), bool)
    for item in entry["ignore"]:
        x0, y0, x1, y1 = item["box"]
        ignore[y0:y1, x0:x1] = True
    return masks, ignore


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[H, W]`` bool -> ``[h, w]`` bool (``size = (w, h)``): area-averaged, kept where >= 0.5."""
    if mask.shape[::-1] == size:
        return mask
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5


def perturb(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB after ``WHITE_BALANCE`` gains and a JPEG re-compression at ``JPEG_QUALITY``."""
    balanced = np.clip(rgb.astype(np.float32) * np.array(WHITE_BALANCE, np.float32), 0, 255).round().astype(np.uint8)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(balanced, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def labelled_views(data_dir: Path, labels: dict[str, dict[str, Any]]):
    """Yield ``(group, rgb [h, w, 3] uint8, highlight masks [h, w], ignore [h, w])`` for part (e):
    each frame at its native size in its data set's group, and the sinus frames also at the
    ``SINUS_WIDTHS`` and perturbed."""
    for rel, entry in labels.items():
        rgb = load_image(data_dir / rel)  # [H, W, 3] uint8
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        masks, ignore = label_masks(grey, entry)
        dataset = rel.split("/")[0]
        if dataset.startswith("13_"):
            h, w = grey.shape
            views = [(f"sinus {width}", width, False) for width in SINUS_WIDTHS]
            views.append((f"sinus {PERTURBED_WIDTH} wb+jpeg", PERTURBED_WIDTH, True))
            for group, width, perturbed in views:
                size = (width, round(h * width / w))
                small = rgb if size == (w, h) else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                yield (group, perturb(small) if perturbed else small,
                       [resize_mask(m, size) for m in masks], resize_mask(ignore, size))
        else:
            group = {"10": "laparoscopic", "12": "phantom", "09": "ead2019 00017"}[dataset[:2]]
            yield group, rgb, masks, ignore


def score_labelled(data_dir: Path, methods: Sequence[str], device: str,
                   labels_path: Path = LABELS) -> dict[str, dict[str, dict[str, float]]]:
    """Part (e): pixel and per-blob recall / precision of each method on the labelled frames."""
    labels = read_labels(labels_path)
    counts: dict[str, dict[str, np.ndarray]] = {}  # method -> group -> [tp, fp, fn, hit, blobs, det_tp, det_fp, frames]
    for group, rgb, masks, ignore in tqdm(list(labelled_views(data_dir, labels)), desc="(e) labelled", unit="view"):
        truth = np.zeros(ignore.shape, bool)
        for m in masks:
            truth |= m
        masks = [m for m in masks if m.any()]  # highlights that vanish at a reduced size are not counted
        for method in methods:
            pred = detect(torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).to(device), method).cpu().numpy()
            n, comp = cv2.connectedComponents(pred.astype(np.uint8), connectivity=8)
            on_truth = np.bincount(comp[truth], minlength=n) > 0
            off_ignore = np.bincount(comp[~ignore], minlength=n) > 0
            det_tp = int(on_truth[1:].sum())
            det_fp = int((~on_truth[1:] & off_ignore[1:]).sum())
            row = np.array([
                (pred & truth).sum(), (pred & ~truth & ~ignore).sum(), (~pred & truth).sum(),
                sum(bool((pred & m).any()) for m in masks), len(masks), det_tp, det_fp, 1,
            ], dtype=np.float64)
            native = group in NATIVE_GROUPS
            for key in (group, "all (native size)") if native else (group,):
                counts.setdefault(method, {}).setdefault(key, np.zeros(8))
                counts[method][key] += row
    results: dict[str, dict[str, dict[str, float]]] = {}
    for method, groups in counts.items():
        for group, (tp, fp, fn, hit, blobs, det_tp, det_fp, frames) in groups.items():
            results.setdefault(method, {})[group] = {
                "pixel_recall": tp / max(1.0, tp + fn),
                "pixel_precision": tp / max(1.0, tp + fp),
                "blob_recall": hit / max(1.0, blobs),
                "blob_precision": det_tp / max(1.0, det_tp + det_fp),
                "blobs": int(blobs),
                "detections": int(det_tp + det_fp),
                "frames": int(frames),
            }
    return results


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


def load_photo(path: Path, long_side: Optional[int] = None) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB, shrunk (area) to ``long_side`` if it is longer."""
    rgb = load_image(path)
    h, w = rgb.shape[:2]
    if long_side is not None and max(h, w) > long_side:
        scale = long_side / max(h, w)
        rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return rgb


def score_everyday(data_dir: Path, methods: Sequence[str], device: str,
                   photo_cache: Optional[Path] = DEFAULT_PHOTO_CACHE) -> dict[str, dict[str, Any]]:
    """Part (b): per method, the share of ALIKED keypoints masked on photos without glare: the
    shared everyday photos and (unless ``photo_cache`` is None) the ``HARD_PHOTOS``."""
    extractor = build_extractor("aliked", max_num_keypoints=EVERYDAY_KEYPOINTS).eval().to(device)
    photos: list[tuple[str, Path, Optional[int]]] = [(rel, data_dir / rel, None) for rel in everyday_photos(data_dir)]
    if photo_cache is not None:
        photos += [(f"{package}:{Path(member).name if 'contents' not in member else member.split('/')[3]}", path,
                    HARD_PHOTO_LONG_SIDE)
                   for (package, _, member, _, _), path in zip(HARD_PHOTOS, fetch_photos(photo_cache))]
    shares: dict[str, list[float]] = {m: [] for m in methods}
    for name, path, long_side in tqdm(photos, desc="(b) everyday", unit="photo"):
        rgb = load_photo(path, long_side)  # [H, W, 3] uint8
        kpts = extractor.extract(rgb)["keypoints"][0]  # [N, 2]
        for method in methods:
            mask = torch.from_numpy(detect(rgb, method)).to(device)  # [H, W]
            shares[method].append(in_mask(kpts, mask, MASK_MARGIN).sum().item() / max(1, len(kpts)))
    logger.info("(b) %d photos", len(photos))
    names = [name for name, _, _ in photos]
    hard = [":" in name for name in names]
    results = {}
    for method, values in shares.items():
        worst = int(np.argmax(values))
        results[method] = {
            "median": float(np.median(values)),
            "mean": float(np.mean(values)),
            "max": values[worst],
            "worst_photo": names[worst],
            "mean_shared": float(np.mean([v for v, h in zip(values, hard) if not h])),
            "mean_hard": float(np.mean([v for v, h in zip(values, hard) if h])) if any(hard) else None,
            "per_photo": dict(zip(names, values)),
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
    photo_cache: Optional[Path] = DEFAULT_PHOTO_CACHE,
) -> dict:
    """Run the ``parts``; write JSON to ``out`` and the tables to ``out`` with suffix ``.md``.
    ``photo_cache=None`` leaves the ``HARD_PHOTOS`` out of part (b)."""
    logger.info("data_dir=%s methods=%s parts=%s draws=%d long_side=%d device=%s photo_cache=%s",
                data_dir, methods, parts, draws, long_side, device, photo_cache)
    report: dict[str, Any] = {
        "config": {"methods": list(methods), "parts": list(parts), "draws": draws, "long_side": long_side,
                   "device": device, "mask_margin": MASK_MARGIN, "photos": list(SYNTHETIC_PHOTOS),
                   "placements": list(PLACEMENTS), "everyday_photos": list(EVERYDAY_PHOTOS),
                   "hard_photos": [dict(zip(("package", "version", "path", "licence", "shows"), row))
                                   for row in HARD_PHOTOS] if photo_cache is not None else [],
                   "hard_photo_long_side": HARD_PHOTO_LONG_SIDE,
                   "everyday_keypoints": EVERYDAY_KEYPOINTS, "glint_keypoints": GLINT_KEYPOINTS,
                   "issue_glare": ISSUE_GLARE, "labels": LABELS.relative_to(REPO_ROOT).as_posix(),
                   "sinus_widths": list(SINUS_WIDTHS), "perturbed": {"width": PERTURBED_WIDTH,
                   "white_balance": list(WHITE_BALANCE), "jpeg_quality": JPEG_QUALITY}},
    }
    if "a" in parts:
        report["synthetic"] = score_synthetic(data_dir, methods, draws, long_side, device)
    if "b" in parts:
        report["everyday"] = score_everyday(data_dir, methods, device, photo_cache)
    if "c" in parts:
        report["glints"] = score_glints(data_dir, methods, device)
    if "d" in parts:
        report["ead2019"] = score_ead(data_dir, methods, device)
    if "e" in parts:
        report["labelled"] = score_labelled(data_dir, methods, device)
    tables = format_tables(report)
    print(tables)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(jsonable(report), indent=2, allow_nan=False))
        out.with_suffix(".md").write_text(tables + "\n")
        logger.info("wrote %s and %s", out, out.with_suffix(".md"))
    return report


def overlay(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB with ``mask [H, W]`` tinted green and outlined."""
    out = rgb.copy()
    out[mask] = (0.45 * out[mask] + np.array([0, 140, 0])).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (0, 255, 0), 1)
    return out


def write_figure(data_dir: Path, path: Path, photo_cache: Optional[Path] = DEFAULT_PHOTO_CACHE,
                 method: str = "highlight", width: int = 320) -> Path:
    """The default detector's masks on sinus, laparoscopic and phantom frames and on two
    everyday photos (one from ``HARD_PHOTOS`` if ``photo_cache`` is given), each panel
    ``width`` px wide; a close-up of the sinus glint. Writes a PNG to ``path``."""
    sinus = load_photo(data_dir / "13_sinus_endoscopy_sfm_poses" / "00004608.jpg")  # [1080, 1920, 3]
    panels = [
        ("sinus 1920x1080", sinus, None),
        ("sinus, close-up", sinus[610:860, 760:1090], sinus),
        ("laparoscopic 320x240", load_photo(data_dir / GLINT_SEQUENCES["laparoscopic"] / "frame_00.png"), None),
        ("phantom 320x240", load_photo(data_dir / GLINT_SEQUENCES["phantom"] / "frame_204.png"), None),
        ("sunlit stone", load_photo(data_dir / "02_hloc_sacre_coeur/mapping/02928139_3448003521.jpg",
                                               HARD_PHOTO_LONG_SIDE), None),
    ]
    if photo_cache is not None:
        snow = fetch_photos(photo_cache)[0]
        panels.append(("snow (wallpaper)", load_photo(snow, HARD_PHOTO_LONG_SIDE), None))
    tiles = []
    for title, rgb, full in panels:
        if full is not None:  # a crop: detect on the whole frame, show the crop of the mask
            mask = detect(full, method)[610:860, 760:1090]
        else:
            mask = detect(rgb, method)  # [H, W] at the photo's size
        vis = overlay(rgb, mask)
        h, w = vis.shape[:2]
        tile = cv2.resize(vis, (width, round(h * width / w)), interpolation=cv2.INTER_AREA if w > width
                          else cv2.INTER_NEAREST)
        tile = tile[: round(0.8 * width)]  # portrait photos: the top
        tile = cv2.copyMakeBorder(tile, 22, 4, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(tile, f"{title}: {mask.mean():.2%} masked", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    columns = 3
    rows = []
    for start in range(0, len(tiles), columns):
        row = tiles[start:start + columns]
        height = max(t.shape[0] for t in row)
        row = [cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
               for t in row]
        while len(row) < columns:
            row.append(np.full_like(row[0], 255))
        rows.append(np.hstack(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = np.vstack(rows) & 0xF8  # 5 bits per channel: a third of the PNG's size, no visible change
    if not cv2.imwrite(str(path), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {path}")
    logger.info("wrote %s", path)
    return path


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
    hard = bool(conf["hard_photos"])
    lines = [
        "### (b) Keypoints masked on everyday photos (no injected highlights)",
        "",
        "| method | median | mean | max | worst photo |" + (" mean, shared photos | mean, snow/lamps/sun/white |" if hard else ""),
        "|---|---:|---:|---:|---|" + ("---:|---:|" if hard else ""),
    ]
    for method, r in rows.items():
        line = f"| {method} | {r['median']:.1%} | {r['mean']:.1%} | {r['max']:.1%} | {Path(r['worst_photo']).name} |"
        if hard:
            line += f" {r['mean_shared']:.1%} | {r['mean_hard']:.1%} |"
        lines.append(line)
    n = len(next(iter(rows.values()))["per_photo"])
    lines.append(f"\nShare of ALIKED keypoints ({conf['everyday_keypoints']}, default resize) on the mask "
                 f"detected at full resolution, grown by {conf['mask_margin']} px; over {n} photos"
                 + (f" ({len(conf['hard_photos'])} of them from Debian wallpaper packages, detected at a "
                    f"{conf['hard_photo_long_side']} px long side)." if hard else "."))
    if hard:
        names = [name for name in next(iter(rows.values()))["per_photo"] if ":" in name]
        lines += ["", "| photo (package:file) | shows | licence | " + " | ".join(rows) + " |",
                  "|---|---|---|" + "---:|" * len(rows)]
        for name, photo in zip(names, conf["hard_photos"]):
            lines.append(f"| {name} | {photo['shows']} | {photo['licence']} | "
                         + " | ".join(f"{r['per_photo'][name]:.1%}" for r in rows.values()) + " |")
    return "\n".join(lines)


def format_labelled(report: dict) -> str:
    conf = report["config"]
    lines = [
        "### (e) Hand-checked highlights on real endoscopy frames",
        "",
        "| method | frames | highlights | pixel R | pixel P | blob R | blob P (detections) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for method, groups in report["labelled"].items():
        for group, r in groups.items():
            lines.append(f"| {method} | {group} ({r['frames']}) | {r['blobs']} | {r['pixel_recall']:.2f} "
                         f"| {r['pixel_precision']:.2f} | {r['blob_recall']:.2f} "
                         f"| {r['blob_precision']:.2f} ({r['detections']}) |")
    p = conf["perturbed"]
    lines.append(f"\nLabels: `{conf['labels']}` (boxes, hand-checked; masks = the half-maximum outline in each "
                 "box). Pixel R / P: recall and precision of the labelled pixels (detections in 'ignore' boxes "
                 "count neither way); blob R: share of labelled highlights with a detected pixel; blob P: share "
                 "of detected connected components touching a labelled highlight (components wholly in ignore "
                 f"boxes left out). Sinus frames also area-downsampled to {', '.join(map(str, conf['sinus_widths'][1:]))} "
                 f"px wide, and at {p['width']} px after white-balance gains {tuple(p['white_balance'])} (R, G, B) "
                 f"and JPEG quality {p['jpeg_quality']}; 'all (native size)' pools the native-size groups.")
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
                  "ead2019": format_ead, "labelled": format_labelled}
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
    parser.add_argument("--photo-cache", type=Path, default=DEFAULT_PHOTO_CACHE,
                        help="where the Debian wallpaper photos of part (b) are fetched to")
    parser.add_argument("--no-package-photos", action="store_true",
                        help="leave the Debian wallpaper photos out of part (b) and the figure (no apt-get)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="write the mask figure (PNG) here instead of running the parts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cache = None if args.no_package_photos else args.photo_cache
    if args.figure is not None:
        write_figure(args.data_dir, args.figure, cache)
    else:
        main(args.data_dir, args.out, args.methods, args.draws, args.long_side, args.device, args.parts, cache)
