"""From dataset items to training batches: frozen features, masks, ground truth, item order.

- :class:`ItemOrder`: which dataset items a process trains on at each step; a pure function
  of ``(seed, rank, world size, step)``, so a resumed run continues with the very next items
  and every process of a DDP run sees its own shard (epochs reshuffle within the shard).
- :class:`BatchBuilder`: features of both views from the frozen extractor (fp32, no
  gradients), the specularity of every keypoint (model input, ``mask_margin`` px) and whether a
  highlight covers it (ground truth), labels by reprojection (homography or depth), optionally
  cached per item in an HDF5 file (:class:`TrainingCache`), then padded to a batch; masks are
  withheld from a pair with probability ``withhold_masks``, decided by ``(seed, index)``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..batching import pad_features
from ..features import build_extractor
from ..geometry import IGNORE, UNMATCHED, gt_matches_batch_from_depth, gt_matches_batch_from_homography
from ..confs import MASK_MARGIN, SPECULAR_THRESHOLD
from ..specular import sample_mask
from ..storage import open_h5, read_settings, settings_changes, write_settings

logger = logging.getLogger(__name__)

_VIEW_KEYS = ("keypoints", "descriptors", "keypoint_scores", "keypoint_specular", "covered", "image_size")


class ItemOrder:
    """Dataset indices of each step for one process.

    The ``length`` items are dealt to ``world`` shards (``index % world == rank``); shard
    positions ``step * batch_size ... + batch_size - 1`` run through a fresh permutation of
    the shard every epoch (seeded by ``(seed, epoch, rank)``).
    """

    def __init__(self, length: int, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        if length < world:
            raise ValueError(f"{length} training items cannot be shared by {world} processes")
        self.shard = np.arange(rank, length, world)
        self.batch_size, self.seed, self.rank = batch_size, seed, rank
        self._permutations: Dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            self._permutations = {epoch: np.random.default_rng([self.seed, epoch, self.rank]).permutation(len(self.shard))}
        return self._permutations[epoch]

    def indices(self, step: int) -> List[int]:
        out = []
        for position in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch, offset = divmod(position, len(self.shard))
            out.append(int(self.shard[self._permutation(epoch)[offset]]))
        return out


class TrainingCache:
    """Per-item features and labels of one split in ``<folder>/<name>.h5``.

    The file records the settings its values depend on (data, extractor, split) as
    :mod:`specglue.storage` files do; one made with other settings, or unreadable, is started
    again, since the cache only saves time. An item's group is complete once it has the
    ``done`` attribute, written last.
    """

    def __init__(self, folder: Path, name: str, settings: Mapping[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{name}.h5"
        keep = True
        try:
            self.file = open_h5(self.path, "a", "training feature cache")
            changes = settings_changes(read_settings(self.file), settings) if len(self.file) else []
            if changes:
                logger.info("training feature cache %s was made with other settings (%s): starting it again",
                            self.path, "; ".join(changes))
                self.file.close()
                keep = False
        except ValueError as err:
            logger.warning("%s: starting the cache again", err)
            keep = False
        if not keep:
            self.path.unlink()
            self.file = open_h5(self.path, "a", "training feature cache")
        write_settings(self.file, settings)

    def get(self, index: int) -> Optional[Dict[str, Any]]:
        group = self.file.get(str(index))
        if group is None or "done" not in group.attrs:
            return None
        views = [{key: torch.from_numpy(group[f"{k}/{key}"][()]) for key in _VIEW_KEYS} for k in (0, 1)]
        return {"views": views, "matches0": torch.from_numpy(group["matches0"][()]),
                "matches1": torch.from_numpy(group["matches1"][()])}

    def put(self, index: int, entry: Mapping[str, Any]) -> None:
        name = str(index)
        if name in self.file:
            del self.file[name]
        group = self.file.create_group(name)
        for k, view in enumerate(entry["views"]):
            for key in _VIEW_KEYS:
                group.create_dataset(f"{k}/{key}", data=view[key].numpy())
        group.create_dataset("matches0", data=entry["matches0"].numpy())
        group.create_dataset("matches1", data=entry["matches1"].numpy())
        group.attrs["done"] = True  # written last: a group without it is incomplete
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def unmatch_masked(matches0: torch.Tensor, matches1: torch.Tensor, masked0: torch.Tensor, masked1: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Labels [B, M] / [B, N] with the matches that the matcher's masks forbid made unmatched.

    In the hard / cross / soft modes a keypoint given as specular (``masked``: [B, M] / [B, N]
    bool, within ``mask_margin`` of a highlight) can never be matched; its label and its
    partner's become :data:`~specglue.geometry.UNMATCHED` (its own dustbin term is then 0).
    """
    out = []
    for own, other, own_masked, other_masked in ((matches0, matches1, masked0, masked1),
                                                 (matches1, matches0, masked1, masked0)):
        partner_masked = other_masked.gather(1, own.clamp(min=0)) & (own >= 0)
        out.append(own.masked_fill(own_masked | partner_masked, UNMATCHED))
    return out[0], out[1]


class BatchBuilder:
    """Training batches of a dataset (:class:`~specglue.train.data.HomographyPairs` or
    :class:`~specglue.train.data.DepthPairs`).

    Args:
        dataset: items with ``image0``, ``image1``, ``specular_mask0/1`` and either ``H_0to1``
            or ``depth0/1``, ``K0/1``, ``T_0to1``; optional ``roi0/1`` (keypoints only inside).
        extractor: registry name of the frozen extractor; ``extractor_conf`` its options.
        mask_margin: px, for the model's specularity input (ground truth uses the exact mask).
        withhold_masks: probability that a pair's masks are not given to the model.
        masked_unmatched: the model masks specular keypoints (hard / cross / soft): their
            matches become unmatched labels (:func:`unmatch_masked`).
        cache: folder of the HDF5 feature cache (None: extract every time); ``cache_name``
            names the file (one per split and process).
        labels: the ground truth's ``positive_px``, ``negative_px`` (and ``depth_tolerance``) for
            ``"homography"`` and ``"depth"`` items (defaults: 3 / 3 px and 3 / 5 px, 0.1).
    """

    def __init__(self, dataset: torch.utils.data.Dataset, extractor: str, extractor_conf: Mapping[str, Any],
                 mask_margin: int = MASK_MARGIN, withhold_masks: float = 0.0, masked_unmatched: bool = True, seed: int = 0, cache: Optional[Path] = None,
                 cache_name: str = "features", cache_settings: Optional[Mapping[str, Any]] = None,
                 labels: Optional[Mapping[str, Mapping[str, float]]] = None) -> None:
        self.dataset = dataset
        self.extractor = build_extractor(extractor, **extractor_conf).eval()
        for parameter in self.extractor.parameters():
            parameter.requires_grad_(False)
        self.mask_margin, self.withhold_masks, self.seed = int(mask_margin), float(withhold_masks), int(seed)
        self.masked_unmatched = bool(masked_unmatched)
        self.labels = {kind: dict(values) for kind, values in (labels or {}).items()}
        self.cache = None
        if cache is not None:
            settings = {"extractor": extractor, "extractor_conf": dict(extractor_conf), "mask_margin": mask_margin,
                        "labels": self.labels, **dict(cache_settings or {})}
            self.cache = TrainingCache(Path(cache), cache_name, settings)

    @torch.no_grad()
    def _view(self, image: torch.Tensor, mask: torch.Tensor, roi: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        feats = self.extractor.extract(image, roi=roi)
        keypoints = feats["keypoints"].float()
        return {"keypoints": keypoints, "descriptors": feats["descriptors"].float(),
                "keypoint_scores": feats["keypoint_scores"].float(),
                "keypoint_specular": sample_mask(mask[None], keypoints, margin=self.mask_margin),
                "covered": sample_mask(mask[None], keypoints, margin=0) >= 0.5,
                "image_size": torch.as_tensor(feats["image_size"]).reshape(1, 2).float()}

    def _labels(self, item: Mapping[str, Any], views: Sequence[Dict[str, torch.Tensor]]
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        v0, v1 = views
        common = dict(covered0=v0["covered"], covered1=v1["covered"])
        if "H_0to1" in item:
            labels = self.labels.get("homography", {})
            gt = gt_matches_batch_from_homography(
                v0["keypoints"], v1["keypoints"], item["H_0to1"][None], v0["image_size"], v1["image_size"],
                positive_px=labels.get("positive_px", 3.0), negative_px=labels.get("negative_px", 3.0), **common)
        else:
            labels = self.labels.get("depth", {})
            gt = gt_matches_batch_from_depth(
                v0["keypoints"], v1["keypoints"], item["depth0"][None], item["depth1"][None], item["K0"][None],
                item["K1"][None], item["T_0to1"][None], positive_px=labels.get("positive_px", 3.0),
                negative_px=labels.get("negative_px", 5.0), depth_tolerance=labels.get("depth_tolerance", 0.1),
                **common)
        return gt["matches0"][0], gt["matches1"][0]

    def entry(self, index: int) -> Dict[str, Any]:
        """Features of both views and labels of item ``index`` (from the cache when there)."""
        if self.cache is not None:
            cached = self.cache.get(index)
            if cached is not None:
                return cached
        item = self.dataset[index]
        views = [self._view(item[f"image{k}"], item[f"specular_mask{k}"], item.get(f"roi{k}")) for k in (0, 1)]
        matches0, matches1 = self._labels(item, views)
        entry = {"views": views, "matches0": matches0, "matches1": matches1}
        if self.cache is not None:
            self.cache.put(index, entry)
        return entry

    def masks_withheld(self, index: int) -> bool:
        return bool(np.random.default_rng([self.seed, 7919, int(index)]).random() < self.withhold_masks)

    def batch(self, indices: Sequence[int]) -> Dict[str, Any]:
        """The model input (``image0`` / ``image1`` feature dicts) and padded labels
        ``matches0`` [B, M], ``matches1`` [B, N] (padding: ignored) of items ``indices``."""
        entries = [self.entry(i) for i in indices]
        data: Dict[str, Any] = {}
        for k in (0, 1):
            views = []
            for index, entry in zip(indices, entries):
                view = {key: value for key, value in entry["views"][k].items() if key != "covered"}
                if self.masks_withheld(index):
                    view["keypoint_specular"] = torch.zeros_like(view["keypoint_specular"])
                views.append(view)
            data[f"image{k}"] = pad_features(views)
        labels = {}
        for k, side in ((0, "matches0"), (1, "matches1")):
            size = data[f"image{k}"]["keypoints"].shape[1]
            labels[side] = torch.stack([F.pad(e[side], (0, size - e[side].shape[0]), value=IGNORE) for e in entries])
        if self.masked_unmatched:
            labels["matches0"], labels["matches1"] = unmatch_masked(
                labels["matches0"], labels["matches1"], data["image0"]["keypoint_specular"] >= SPECULAR_THRESHOLD,
                data["image1"]["keypoint_specular"] >= SPECULAR_THRESHOLD)
        return {"data": data, **labels, "indices": list(indices)}

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


__all__ = ["BatchBuilder", "ItemOrder", "TrainingCache"]
