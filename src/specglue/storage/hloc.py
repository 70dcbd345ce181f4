"""hloc's HDF5 layouts: features files and matches files, read and written as hloc does.

Features file (``hloc/extract_features.py``): one group per image name (a name with ``/``
gives nested groups) holding::

    keypoints    [N, 2] float  pixel (x, y), centre of the top-left pixel = (0, 0)
    descriptors  [D, N] float  (transposed, as hloc stores them)
    scores       [N]    float  detection scores
    image_size   [2]           (W, H)
    specularity  [N]    float  specglue only: per-keypoint specularity in [0, 1] (optional)
    specular_mask [H, W] bool  specglue only: the image's highlight mask (evaluation caches)
    to_image1    [3, 3] float  specglue only: for a view of another image (evaluation caches),
                               the map from its pixels to that image's

plus, for files specglue writes, their settings as JSON in the root attribute ``specglue``
(:func:`specglue.storage.h5.read_settings`). Files made by hloc (no settings) are read as well.

Matches file (``hloc/match_features.py``): one group per pair, named
:func:`names_to_pair` ``(name0, name1)``, holding ``matches0 [N0]`` (index into image 1's
keypoints or -1) and ``matching_scores0 [N0]``. :func:`read_matches` also finds a pair stored
the other way round or under hloc's older ``_`` naming, as hloc's ``find_pair`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch


def names_to_pair(name0: str, name1: str, separator: str = "/") -> str:
    """hloc's group name of a pair: ``/`` in the image names become ``-``."""
    return separator.join((name0.replace("/", "-"), name1.replace("/", "-")))


def pair_keys(name0: str, name1: str) -> List[Tuple[str, bool]]:
    """The group names a pair may be stored under, with whether it is stored reversed:
    hloc's naming either way round, then the older ``_``-separated one."""
    return [(names_to_pair(name0, name1), False), (names_to_pair(name1, name0), True),
            (names_to_pair(name0, name1, "_"), False), (names_to_pair(name1, name0, "_"), True)]


@dataclass
class ImageFeatures:
    """The features of one image as stored in a features file (numpy, keypoints in pixels).

    keypoints [N, 2]; descriptors [N, D] (not transposed); scores [N]; image_size (W, H) [2];
    specularity [N] in [0, 1] or None; scales, oris [N] for SIFT or None; mask [H, W] bool,
    the image's highlights, or None; to_image1 [3, 3], for a view of image 1 of an evaluation
    pair (e.g. turned by 90 degrees), the map from its pixels to image 1's, or None.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    scores: np.ndarray
    image_size: np.ndarray
    specularity: Optional[np.ndarray] = None
    scales: Optional[np.ndarray] = None
    oris: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None
    to_image1: Optional[np.ndarray] = None

    @classmethod
    def from_extractor(cls, feats: Dict[str, torch.Tensor], specularity: Optional[torch.Tensor] = None
                       ) -> "ImageFeatures":
        """From an extractor's output for one image (``[1, N, ...]`` tensors)."""
        valid = feats["keypoint_mask"][0] if "keypoint_mask" in feats else slice(None)

        def arr(t: Optional[torch.Tensor]) -> Optional[np.ndarray]:
            return None if t is None else t[0][valid].detach().float().cpu().numpy()

        return cls(keypoints=arr(feats["keypoints"]), descriptors=arr(feats["descriptors"]),
                   scores=arr(feats["keypoint_scores"]),
                   image_size=feats["image_size"][0].cpu().numpy().astype(np.float32),
                   specularity=arr(specularity), scales=arr(feats.get("scales")),
                   oris=arr(feats.get("oris")))

    def to_view(self, device: Union[str, torch.device] = "cpu") -> Dict[str, torch.Tensor]:
        """The matcher's input dict of this image, a batch of one (``[1, N, ...]``)."""
        view = {"keypoints": self.keypoints, "descriptors": self.descriptors,
                "keypoint_scores": self.scores, "keypoint_specular": self.specularity,
                "scales": self.scales, "oris": self.oris}
        out = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))[None].to(device)
               for k, v in view.items() if v is not None}
        out["image_size"] = torch.from_numpy(self.image_size.astype(np.float32))[None].to(device)
        return out


def write_image_features(h5file: Any, name: str, feats: ImageFeatures, as_half: bool = False) -> None:
    """Write one image's group (replacing an existing one) in hloc's layout."""
    if name in h5file:
        del h5file[name]
    group = h5file.create_group(name)
    float_type = np.float16 if as_half else np.float32
    group.create_dataset("keypoints", data=feats.keypoints.astype(np.float32))
    group.create_dataset("descriptors", data=feats.descriptors.T.astype(float_type))
    group.create_dataset("scores", data=feats.scores.astype(float_type))
    group.create_dataset("image_size", data=np.asarray(feats.image_size, dtype=np.float32))
    for key in ("specularity", "scales", "oris"):
        value = getattr(feats, key)
        if value is not None:
            group.create_dataset(key, data=value.astype(np.float32))
    if feats.mask is not None:
        group.create_dataset("specular_mask", data=np.asarray(feats.mask, dtype=bool), compression="gzip")
    if feats.to_image1 is not None:
        group.create_dataset("to_image1", data=np.asarray(feats.to_image1, dtype=np.float64))


def read_image_features(h5file: Any, name: str) -> ImageFeatures:
    """Read one image's group; ``KeyError`` naming the image when it is not in the file."""
    if name not in h5file or "keypoints" not in h5file[name]:
        raise KeyError(f"image {name!r} is not in the features file {h5file.file.filename}")
    group = h5file[name]

    def get(key: str) -> Optional[np.ndarray]:
        return np.asarray(group[key], dtype=np.float32) if key in group else None

    return ImageFeatures(
        keypoints=get("keypoints"), descriptors=np.ascontiguousarray(get("descriptors").T),
        scores=get("scores"), image_size=get("image_size"), specularity=get("specularity"),
        scales=get("scales"), oris=get("oris"),
        mask=group["specular_mask"][()] if "specular_mask" in group else None,
        to_image1=group["to_image1"][()] if "to_image1" in group else None)


def write_pair_matches(h5file: Any, name0: str, name1: str, matches0: np.ndarray,
                       scores0: np.ndarray) -> None:
    """Write one pair's group (``matches0`` int32 [N0], ``matching_scores0`` float32 [N0])."""
    key = names_to_pair(name0, name1)
    if key in h5file:
        del h5file[key]
    group = h5file.create_group(key)
    group.create_dataset("matches0", data=np.asarray(matches0, dtype=np.int32))
    group.create_dataset("matching_scores0", data=np.asarray(scores0, dtype=np.float32))


def find_pair(h5file: Any, name0: str, name1: str) -> Tuple[str, bool]:
    """The group name of a pair and whether it is stored reversed; ``KeyError`` when absent."""
    for key, reversed_ in pair_keys(name0, name1):
        if key in h5file and "matches0" in h5file[key]:
            return key, reversed_
    raise KeyError(f"pair ({name0}, {name1}) is not in the matches file {h5file.filename}: "
                   "maybe it was matched with another list of pairs?")


def read_matches(h5file: Any, name0: str, name1: str) -> Tuple[np.ndarray, np.ndarray]:
    """The matches of a pair as index pairs ``[S, 2]`` (into name0's, name1's keypoints) and
    their scores ``[S]``, whichever way round the pair is stored (as hloc's ``get_matches``)."""
    key, reversed_ = find_pair(h5file, name0, name1)
    matches0 = np.asarray(h5file[key]["matches0"])
    scores0 = np.asarray(h5file[key]["matching_scores0"], dtype=np.float32)
    index0 = np.flatnonzero(matches0 != -1)
    matches = np.stack([index0, matches0[index0]], -1).astype(np.int64)
    if reversed_:
        matches = matches[:, ::-1].copy()
    return matches, scores0[index0]


__all__ = [
    "ImageFeatures",
    "find_pair",
    "names_to_pair",
    "pair_keys",
    "read_image_features",
    "read_matches",
    "write_image_features",
    "write_pair_matches",
]
