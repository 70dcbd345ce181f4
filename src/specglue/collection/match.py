"""Match the pairs of a pairs file into an hloc matches file, batched and resumable.

For each pair the matcher's ``matches0`` / ``matching_scores0`` are written under hloc's pair
name (see :mod:`specglue.storage.hloc`), so hloc's triangulation and COLMAP import read
the file unchanged. Pairs go to the matcher in batches of ``batch_size`` (the padded batch of
:class:`specglue.LightGlue`; each pair gets its single-pair result). Per-keypoint
``specularity`` stored by ``specglue extract`` goes in as ``keypoint_specular``, used as
``specular_mode`` says.

Resuming: finished pairs go to part files (:mod:`specglue.storage.journal`), so a run
killed at any moment loses at most the pairs it had not yet flushed, and a rerun matches
only the pairs the file does not hold (either way round, as hloc). A pair list given twice
or in both orders is matched once.

The matcher must fit the features: a file written by ``specglue extract`` records its
extractor, and matching it with the weights of another is refused; for a file made by hloc
the extractor must be named (``features=``), and its descriptor width is checked.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from ..batching import pad_features
from ..features import EXTRACTORS
from ..confs import PIPELINE_SPECULAR_MODE, SPECULAR_MODES
from ..model.lightglue import LightGlue
from ..presets import Preset, precision_conf, resolve_preset
from ..weights import CHECKPOINTS
from .engine import LocalEngine
from ..storage import (ImageFeatures, PartJournal, check_settings, check_writable, leaf_groups, open_h5, pair_keys,
                       read_image_features, read_settings, write_pair_matches)
from .pairs import Pair, read_pairs

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
#: one pair to match: names and both images' features
PairItem = Tuple[str, str, ImageFeatures, ImageFeatures]
#: one matched pair: names, matches0 [N0] int (-1: none), matching_scores0 [N0]
PairResult = Tuple[str, str, np.ndarray, np.ndarray]


#: matcher precisions of a collection (matched on the CPU): see :func:`specglue.presets.matcher_precision`
PRECISIONS = ("fp32", "bf16", "int8")


@dataclass(frozen=True)
class MatchSettings:
    """What decides the matches (recorded in the matches file, checked on resume).

    features: the feature type whose configuration and official weights the matcher uses
    (None: the extractor the features file records);
    weights: another checkpoint (path or registry name) for that configuration, or None;
    specular_mode: how the stored specularity is used (off | hard | cross | soft | filter);
    depth_confidence / width_confidence / filter_threshold: as in :class:`specglue.LightGlue`;
    precision: the matcher's, ``fp32``, ``bf16`` (autocast, ``mp=True``) or ``int8`` (dynamic
    int8 linear layers); :meth:`from_preset` takes it, the exits and the match threshold
    from a speed preset.
    """

    features: Optional[str] = None
    weights: Optional[str] = None
    specular_mode: str = PIPELINE_SPECULAR_MODE
    depth_confidence: float = LightGlue.default_conf["depth_confidence"]
    width_confidence: float = LightGlue.default_conf["width_confidence"]
    filter_threshold: float = LightGlue.default_conf["filter_threshold"]
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.features is not None and self.features not in LightGlue.features:
            raise ValueError(f"Unknown features {self.features!r}; expected one of {sorted(LightGlue.features)}")
        if self.specular_mode not in SPECULAR_MODES:
            raise ValueError(f"specular_mode must be one of {SPECULAR_MODES}, got {self.specular_mode!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @classmethod
    def from_preset(cls, preset: Union[str, Preset], **fields: Any) -> "MatchSettings":
        """The settings of a speed preset (:mod:`specglue.presets`) on this machine's CPU: its
        precision, exit thresholds and match threshold; ``fields`` set the rest or override them."""
        chosen = resolve_preset(preset)
        return cls(**{"precision": chosen.precision("cpu"), "depth_confidence": chosen.depth_confidence,
                      "width_confidence": chosen.width_confidence, "filter_threshold": chosen.filter_threshold,
                      **fields})

    def to_dict(self) -> Dict[str, Any]:
        settings = asdict(self)
        if self.precision == "fp32":  # recorded only otherwise: fp32 files keep their fingerprint
            del settings["precision"]
        return settings

    def build(self) -> LightGlue:
        conf = {"depth_confidence": self.depth_confidence, "width_confidence": self.width_confidence,
                "filter_threshold": self.filter_threshold, **precision_conf(self.precision)}
        if self.weights is not None:
            conf["weights"] = self.weights
        return LightGlue(features=self.features, **conf).eval()


class PairMatcher:
    """The worker: matches batches of pairs with one matcher (built once per process)."""

    def __init__(self, settings: MatchSettings) -> None:
        self.settings = settings
        self.matcher = settings.build()

    def __call__(self, items: List[PairItem]) -> List[PairResult]:
        use_specularity = self.settings.specular_mode != "off"
        views0, views1 = [], []
        for _, _, feats0, feats1 in items:
            for views, feats in ((views0, feats0), (views1, feats1)):
                view = feats.to_view()
                if not use_specularity or feats0.specularity is None or feats1.specularity is None:
                    view.pop("keypoint_specular", None)
                views.append(view)
        data = {"image0": pad_features(views0), "image1": pad_features(views1)}
        with torch.inference_mode():
            out = self.matcher(data, specular_mode=self.settings.specular_mode)
        results = []
        for k, (name0, name1, feats0, _) in enumerate(items):
            n0 = len(feats0.keypoints)
            results.append((name0, name1, out["matches0"][k, :n0].cpu().numpy().astype(np.int32),
                            out["matching_scores0"][k, :n0].float().cpu().numpy()))
        return results


def check_features_fit(features_settings: Dict[str, Any], descriptor_dim: int, features: Optional[str],
                       path: Path, weights: Optional[str] = None) -> str:
    """The matcher feature type for a features file; ``ValueError`` when it does not fit.

    Args:
        features_settings: the file's specglue settings ({} for an hloc file).
        descriptor_dim: the width of its descriptors.
        features: the feature type asked for, or None to take the file's.
        weights: the matcher checkpoint; a registry entry that needs particular descriptors
            (``aliked_rot``: ALIKED-n16rot) is refused on a file extracted otherwise.
    """
    extracted = features_settings.get("extraction", {}).get("features")
    if extracted is not None and features is not None and extracted != features:
        raise ValueError(
            f"features file {path} holds {extracted} features but the matcher was asked for "
            f"{features} weights: match with --features {extracted}, or extract with --features {features}")
    chosen = features or extracted
    if chosen is None:
        raise ValueError(f"features file {path} does not say which extractor made it (not written by "
                         f"specglue extract): name it with --features {{{','.join(sorted(LightGlue.features))}}}")
    if chosen not in LightGlue.features:
        raise ValueError(f"no LightGlue weights for {chosen} features (features file {path}); "
                         f"known: {sorted(LightGlue.features)}")
    expected = LightGlue.features[chosen]["input_dim"]
    if descriptor_dim != expected:
        raise ValueError(f"features file {path} has {descriptor_dim}-d descriptors but LightGlue for "
                         f"{chosen} expects {expected}-d ones: these are not {chosen} features")
    needed = dict(CHECKPOINTS[weights].extractor) if isinstance(weights, str) and weights in CHECKPOINTS else {}
    if needed and "extraction" in features_settings:
        made = {**EXTRACTORS[chosen].default_conf, **features_settings["extraction"].get("extractor_conf", {})}
        wrong = {k: made.get(k) for k, v in needed.items() if made.get(k) != v}
        if wrong:
            raise ValueError(f"features file {path} was extracted with {wrong} but weights {weights!r} match "
                             f"{needed} descriptors: extract with extractor_conf={needed}")
    elif needed:
        logger.warning("features file %s does not record its extractor: weights %s need %s descriptors",
                       path, weights, needed)
    return chosen


def unique_pairs(pairs: Sequence[Pair]) -> List[Pair]:
    """The pairs in order, each unordered pair once (hloc's ``find_unique_new_pairs``)."""
    seen = set()
    out = []
    for a, b in pairs:
        if (a, b) not in seen and (b, a) not in seen:
            seen.add((a, b))
            out.append((a, b))
    return out


def match_pairs(
    features_path: PathLike,
    pairs: Union[PathLike, Sequence[Pair]],
    out_path: PathLike,
    settings: Optional[MatchSettings] = None,
    batch_size: int = 8,
    overwrite: bool = False,
    engine: Any = None,
    flush_pairs: int = 256,
    flush_seconds: float = 10.0,
    cache_images: int = 256,
    progress: bool = True,
) -> Dict[str, Any]:
    """Match ``pairs`` (a pairs file or a list) of the images of ``features_path``.

    Args:
        settings: the matcher settings (default :class:`MatchSettings`: the official weights of
            the extractor recorded in the features file, hard specular mode).
        batch_size: pairs per matcher call (and per chunk of work for an engine).
        overwrite: match every pair again (the old file and parts are deleted).
        engine: a :mod:`~specglue.collection.engine` engine (default: this process).
        flush_pairs / flush_seconds: finished pairs are written to a part file when this
            many are waiting or this long after the last write, whichever comes first.
        cache_images: images whose features are kept in memory between pairs.

    Returns:
        counts: ``pairs`` (asked, unique), ``matched`` (this run), ``skipped`` (already in the
        file), ``mean_matches`` (this run), ``pairs_per_second`` (this run), ``path``.

    Raises:
        ValueError: unreadable or corrupt features / matches file, a pair naming an image the
            features file lacks, features the matcher does not fit, settings that differ from
            those the matches file was made with, an unwritable output folder.
    """
    features_path, out_path = Path(features_path), Path(out_path)
    check_writable(out_path)
    with open_h5(features_path, "r", "features file") as f:
        names = leaf_groups(f, "keypoints")
        if not names:
            raise ValueError(f"features file {features_path} holds no image (no group with keypoints)")
        features_settings = read_settings(f)
        descriptor_dim = int(f[names[0]]["descriptors"].shape[0])
    settings = settings or MatchSettings()
    settings = replace(settings, features=check_features_fit(
        features_settings, descriptor_dim, settings.features, features_path, settings.weights))
    source = f"the images of the features file {features_path}"
    pair_list = read_pairs(pairs, known=names, source=source) if isinstance(pairs, (str, Path)) else list(pairs)
    known = set(names)
    for a, b in pair_list:
        for name in (a, b):
            if name not in known:
                raise ValueError(f"image {name!r} of pair ({a}, {b}) is not among {source}")
    pair_list = unique_pairs(pair_list)

    journal = PartJournal(out_path, "matches0", "matches file")
    if overwrite:
        journal.discard()
    file_settings = {"matching": settings.to_dict(), "features_file": str(features_path.resolve()),
                     "extraction": features_settings.get("extraction")}
    check_settings(journal.settings().get("matching", {}), file_settings["matching"],
                   f"matches file {out_path}", "use another --out, or --overwrite to match again")
    done = journal.done()
    todo = [(a, b) for a, b in pair_list if not any(key in done for key, _ in pair_keys(a, b))]
    engine = engine or LocalEngine()
    logger.info("match-pairs: %d pairs, %d already matched, %d to do", len(pair_list),
                len(pair_list) - len(todo), len(todo))

    buffer: List[PairResult] = []
    counts: List[int] = []

    def flush() -> None:
        if buffer:
            items = list(buffer)
            journal.write_part(file_settings, lambda f: [write_pair_matches(f, a, b, m, s) for a, b, m, s in items])
            buffer.clear()
            if len(journal.parts()) > 64:  # keep the part count small on long runs
                journal.merge(file_settings)

    start = last_flush = time.monotonic()
    bar = tqdm(total=len(todo), unit="pair", desc="match", disable=not progress, smoothing=0.1)
    with open_h5(features_path, "r", "features file") as features_file:
        batches = _batches(features_file, todo, batch_size, cache_images)
        try:
            for results in engine.map(functools.partial(PairMatcher, settings), batches):
                buffer.extend(results)
                counts.extend(int((m >= 0).sum()) for _, _, m, _ in results)
                bar.update(len(results))
                if len(buffer) >= flush_pairs or time.monotonic() - last_flush >= flush_seconds:
                    flush()
                    last_flush = time.monotonic()
        finally:  # an error part-way keeps what is finished for the rerun
            flush()
            bar.close()
    elapsed = time.monotonic() - start
    journal.merge(file_settings)
    summary = {"pairs": len(pair_list), "matched": len(counts), "skipped": len(pair_list) - len(todo),
               "mean_matches": float(np.mean(counts)) if counts else 0.0,
               "pairs_per_second": len(counts) / elapsed if counts and elapsed > 0 else 0.0,
               "path": str(out_path)}
    logger.info("match-pairs: %s", summary)
    return summary


def _batches(features_file: Any, pairs: Sequence[Pair], batch_size: int, cache_images: int
             ) -> Iterator[List[PairItem]]:
    """Batches of pairs with their features, read through a small LRU cache of images."""
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    cache: "OrderedDict[str, ImageFeatures]" = OrderedDict()

    def load(name: str) -> ImageFeatures:
        if name in cache:
            cache.move_to_end(name)
            return cache[name]
        feats = read_image_features(features_file, name)
        cache[name] = feats
        if len(cache) > cache_images:
            cache.popitem(last=False)
        return feats

    for start in range(0, len(pairs), int(batch_size)):
        yield [(a, b, load(a), load(b)) for a, b in pairs[start:start + int(batch_size)]]


__all__ = ["PRECISIONS", "MatchSettings", "PairMatcher", "check_features_fit", "match_pairs", "unique_pairs"]
