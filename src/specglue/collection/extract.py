"""Extract features from a folder of images or a video into an hloc features file.

Each image gets its group (see :mod:`specglue.storage.hloc`) with, besides hloc's
datasets, the per-keypoint ``specularity``: the highlight mask (detected with
:func:`specglue.specular.detect`, or read from ``MASKS_DIR/<image name>.png``) sampled at the
keypoints with ``mask_margin`` px of margin, which the matcher reads as ``keypoint_specular``.
Keypoints are detected inside the region of interest (``roi``): an endoscope's field of view,
estimated once from frames spread over the source (``"auto"``; none for photo collections
of mixed sizes or without a dark surround), or given as a mask file; the settings record it.
The settings are recorded in the file; a rerun with the same settings skips the images the
file already holds, one with other settings is refused. Crash-safe (part files, see
:mod:`specglue.storage.journal`) and distributable (:mod:`specglue.collection.engine`).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from .. import specular as specular_masks
from ..features import EXTRACTORS, build_extractor
from ..features.roi import ROI_FRAMES, estimate_roi, resolve_roi
from ..confs import MASK_MARGIN, MAX_KEYPOINTS, RESIZE
from ..presets import Preset, resolve_preset
from .engine import LocalEngine
from ..storage import ImageFeatures, PartJournal, check_settings, check_writable, write_image_features
from .sources import ImageSource

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
#: one image to extract: name, RGB uint8 [H, W, 3], given mask [H, W] bool or None
Item = Tuple[str, np.ndarray, Optional[np.ndarray]]


@dataclass(frozen=True)
class ExtractionSettings:
    """What decides the features of an image (recorded in the file, checked on resume).

    features: extractor name; max_num_keypoints / resize: as in :func:`specglue.match_pair`;
    extractor_conf: further extractor settings; specular: ``"auto"`` (detect), ``"none"`` or
    ``"masks"`` (read from a folder); detector: the highlight detector of ``"auto"``;
    mask_margin: px around a specular pixel that still count as specular (the matcher's);
    roi: the region of interest, ``"auto"``, ``"none"`` or a mask file.
    """

    features: str = "aliked"
    max_num_keypoints: int = MAX_KEYPOINTS
    resize: Optional[int] = RESIZE
    extractor_conf: Dict[str, Any] = field(default_factory=dict)
    specular: str = "auto"
    detector: str = specular_masks.DEFAULT_METHOD
    mask_margin: int = MASK_MARGIN
    roi: str = "auto"

    def __post_init__(self) -> None:
        if self.features not in EXTRACTORS:
            raise ValueError(f"Unknown features {self.features!r}; expected one of {sorted(EXTRACTORS)}")
        if self.specular not in ("auto", "none", "masks"):
            raise ValueError(f"specular must be 'auto', 'none' or 'masks', got {self.specular!r}")
        if self.roi not in ("auto", "none") and not Path(self.roi).is_file():
            raise ValueError(f"roi must be 'auto', 'none' or a mask file; {self.roi} is not a file")

    @classmethod
    def from_preset(cls, preset: Union[str, Preset], **fields: Any) -> "ExtractionSettings":
        """The keypoint budget and image size of a speed preset (:mod:`specglue.presets`);
        ``fields`` set the rest or override them."""
        chosen = resolve_preset(preset)
        return cls(**{"max_num_keypoints": chosen.max_num_keypoints, "resize": chosen.resize, **fields})

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class FrameExtractor:
    """The worker: extracts chunks of images with one extractor (built once per process),
    inside the region of interest ``region [H, W]`` if given."""

    def __init__(self, settings: ExtractionSettings, region: Optional[np.ndarray] = None) -> None:
        self.settings, self.region = settings, region
        conf = {"max_num_keypoints": settings.max_num_keypoints, "resize": settings.resize,
                **settings.extractor_conf}
        self.extractor = build_extractor(settings.features, **conf).eval()

    def __call__(self, items: List[Item]) -> List[Tuple[str, ImageFeatures]]:
        out = []
        for name, rgb, mask in items:
            with torch.inference_mode():
                try:
                    feats = self.extractor.extract(rgb, roi=self.region)
                except ValueError as err:
                    raise ValueError(f"{name}: {err}") from err
                if self.settings.specular == "auto":
                    mask = specular_masks.detect(rgb, method=self.settings.detector)
                specularity = None
                if mask is not None:
                    specularity = specular_masks.sample_mask(
                        torch.from_numpy(np.ascontiguousarray(mask))[None].to(feats["keypoints"].device),
                        feats["keypoints"], margin=self.settings.mask_margin)
            out.append((name, ImageFeatures.from_extractor(feats, specularity)))
        return out


def source_roi(roi: str, source: ImageSource) -> Optional[np.ndarray]:
    """The region of interest ``[H, W]`` bool of a source's images, or None.

    ``"auto"`` estimates it from :data:`ROI_FRAMES` frames spread over the source; a folder
    whose images differ in size (a photo collection) gets none.
    """
    if roi != "auto":
        first = source.sample(1)[0]
        return resolve_roi(roi, [first], first.shape[:2], name="--roi")
    frames = source.sample(ROI_FRAMES)
    if len({f.shape for f in frames}) != 1:
        logger.info("roi auto: the images differ in size, no region of interest")
        return None
    return estimate_roi(frames)


def roi_summary(region: Optional[np.ndarray]) -> Optional[Dict[str, Any]]:
    """What the features file records of a region: its share of the image and bounding box."""
    if region is None:
        return None
    ys, xs = np.nonzero(region)
    return {"share": float(region.mean()), "size": [int(region.shape[1]), int(region.shape[0])],
            "bbox_xyxy": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if len(xs) else None}


def mask_path(masks_dir: Path, name: str) -> Path:
    """The mask file of image ``name``: ``MASKS_DIR/<name>.png`` (``a/b.jpg`` -> ``a/b.jpg.png``),
    or ``MASKS_DIR/<name without suffix>.png`` when only that exists."""
    full = masks_dir / (name + ".png")
    stem = (masks_dir / name).with_suffix(".png")
    return full if full.is_file() or not stem.is_file() else stem


def extract_features(
    source: PathLike,
    out_path: PathLike,
    settings: Optional[ExtractionSettings] = None,
    masks_dir: Optional[PathLike] = None,
    every: int = 1,
    overwrite: bool = False,
    engine: Any = None,
    chunk_size: int = 4,
    flush_seconds: float = 10.0,
    progress: bool = True,
) -> Dict[str, Any]:
    """Extract every image of ``source`` (a folder, recursive, or a video) into ``out_path``.

    Args:
        settings: the extraction settings (default :class:`ExtractionSettings`); with
            ``settings.specular == "masks"``, ``masks_dir`` holds one PNG per image.
        every: keep one video frame in ``every``.
        overwrite: start again instead of resuming (the old file and parts are deleted).
        engine: a :mod:`~specglue.collection.engine` engine (default: this process).
        chunk_size: images per chunk of work.
        flush_seconds: finished images are written to a part file at least this often.

    Returns:
        counts: ``images`` (in the file), ``extracted`` (this run), ``skipped``,
        ``mean_keypoints`` (this run), ``path``, and ``source_kind`` (``folder``, ``sequence``
        or ``video``, see :class:`~specglue.collection.sources.ImageSource`).

    Raises:
        ValueError: missing or empty source, unreadable video, a file made with other settings,
            a corrupt output file, a missing mask, an unwritable output folder.
    """
    settings = settings or ExtractionSettings()
    out_path = Path(out_path)
    image_source = ImageSource(source, every=every)
    masks_root = None
    if settings.specular == "masks":
        if masks_dir is None or not Path(masks_dir).is_dir():
            raise ValueError(f"masks folder {masks_dir} does not exist")
        masks_root = Path(masks_dir)
    check_writable(out_path)
    region = source_roi(settings.roi, image_source)
    journal = PartJournal(out_path, "keypoints", "features file")
    if overwrite:
        journal.discard()
    file_settings = {"extraction": settings.to_dict(), "source": str(Path(source).resolve()),
                     "source_kind": image_source.kind, "every": int(every),
                     "masks_dir": None if masks_root is None else str(masks_root.resolve()),
                     "roi": roi_summary(region)}
    check_settings(journal.settings().get("extraction", {}), file_settings["extraction"],
                   f"features file {out_path}", "use another --out, or --overwrite to start again")
    done = journal.done()
    todo = [n for n in image_source.names() if n not in done]
    if masks_root is not None:
        missing = [n for n in todo if not mask_path(masks_root, n).is_file()]
        if missing:
            raise ValueError(f"no mask for {len(missing)} images, e.g. {missing[0]}: expected "
                             f"{masks_root / (missing[0] + '.png')}")
    engine = engine or LocalEngine()

    def chunks() -> Iterator[List[Item]]:
        chunk: List[Item] = []
        for name, rgb in image_source.frames(skip=done):
            mask = None
            if masks_root is not None:
                path = mask_path(masks_root, name)
                mask = specular_masks.read_mask(path)
                if mask.shape != rgb.shape[:2]:
                    raise ValueError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} px but image "
                                     f"{name} is {rgb.shape[1]}x{rgb.shape[0]}")
            chunk.append((name, rgb, mask))
            if len(chunk) == chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    buffer: List[Tuple[str, ImageFeatures]] = []
    keypoints: List[int] = []

    def flush() -> None:
        if buffer:
            items = list(buffer)
            journal.write_part(file_settings, lambda f: [write_image_features(f, n, x) for n, x in items])
            buffer.clear()

    last_flush = time.monotonic()
    bar = tqdm(total=len(todo), unit="img", desc="extract", disable=not progress, smoothing=0.1)
    try:
        for results in engine.map(functools.partial(FrameExtractor, settings, region), chunks()):
            buffer.extend(results)
            keypoints.extend(len(x.keypoints) for _, x in results)
            bar.update(len(results))
            if time.monotonic() - last_flush >= flush_seconds:
                flush()
                last_flush = time.monotonic()
    finally:  # an error part-way keeps what is finished for the rerun
        flush()
        bar.close()
    journal.merge(file_settings)
    total = len(done) + len(keypoints)
    summary = {"images": total, "extracted": len(keypoints), "skipped": len(done),
               "mean_keypoints": float(np.mean(keypoints)) if keypoints else 0.0, "path": str(out_path),
               "source_kind": image_source.kind}
    logger.info("extract: %s", summary)
    return summary


__all__ = ["ExtractionSettings", "FrameExtractor", "extract_features", "mask_path", "roi_summary", "source_roi"]
