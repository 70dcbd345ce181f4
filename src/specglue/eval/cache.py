"""The two HDF5 caches of an evaluation run and the fingerprint that guards them.

``<out_dir>/features.h5`` (:class:`FeatureCache`) holds one group per pair::

    <pair>/image0/{keypoints [M, 2], descriptors [M, D], keypoint_scores [M], image_size [2],
                   specular_mask [H, W]?}
    <pair>/image1/...                      the same for image 1
    <pair>/views/<view>/...                extra views of image 1 some methods need (e.g. the
                                           image rotated by 90 degrees), with to_image1 [3, 3]
    <pair>/gt/{H_0to1 | K0, K1, T_0to1, ...}
    <pair>.attrs["info"]                   JSON metadata (source paths, sampling parameters)

``<out_dir>/predictions/<method>.h5`` (:class:`PredictionCache`): one group per pair with
``matches [S, 2]``, ``scores [S]`` and attributes ``time_s``, ``stop``, ``view``.

``<out_dir>/config.json`` is the fingerprint: the settings that decide features and
predictions. :func:`check_fingerprint` refuses to resume from caches made with others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import h5py
import numpy as np

from ..atomic import atomic_write_text
from ..geometry import warp_points

PathLike = Union[str, Path]


@dataclass
class ImageFeatures:
    """Features of one image: ``keypoints [N, 2]`` px, ``descriptors [N, D]``, ``keypoint_scores
    [N]``, ``image_size [2]`` ``(W, H)`` (+ ``scales``, ``oris`` for SIFT) in ``arrays``, its
    specular ``mask [H, W]`` bool or None, and for a view of image 1, ``to_image1 [3, 3]``
    mapping its pixels to those of image 1."""

    arrays: Dict[str, np.ndarray]
    mask: Optional[np.ndarray] = None
    to_image1: Optional[np.ndarray] = None

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def __contains__(self, key: str) -> bool:
        return key in self.arrays


@dataclass
class PairFeatures:
    """Everything a matcher and a scorer need for one pair (numpy).

    Attributes:
        name: unique pair name (also its HDF5 group name; no ``/``).
        image0, image1: the features of both images.
        gt: ground truth, e.g. ``{"H_0to1": [3, 3]}`` or ``{"K0", "K1", "T_0to1"}``.
        info: small JSON-able metadata.
        views: extra views of image 1 by name (see :class:`specglue.eval.methods.Method`).
        derived: values a scorer derives once per pair and reuses for every method (e.g. the
            ground-truth correspondences); never stored.
    """

    name: str
    image0: ImageFeatures
    image1: ImageFeatures
    gt: Dict[str, np.ndarray] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)
    views: Dict[str, ImageFeatures] = field(default_factory=dict)
    derived: Dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_masks(self) -> bool:
        return self.image0.mask is not None and self.image1.mask is not None

    def side1(self, view: str = "") -> ImageFeatures:
        """Image 1 itself (``view=""``) or one of its views."""
        if not view:
            return self.image1
        if view not in self.views:
            raise KeyError(f"pair {self.name!r} has no view {view!r} of image 1 (have {sorted(self.views)})")
        return self.views[view]

    def keypoints1(self, view: str = "") -> np.ndarray:
        """Keypoints ``[N, 2]`` of image 1 or of a view, in pixels of image 1 (float64)."""
        side = self.side1(view)
        points = side["keypoints"].astype(np.float64)
        return points if side.to_image1 is None else warp_points(points, side.to_image1)


@dataclass
class Prediction:
    """One method's output on one pair: ``matches [S, 2]`` indices into the keypoints of image
    0 and of image 1's ``view`` (``""``: image 1 itself), ``scores [S]``, ``time_s``, ``stop``
    (layers run, -1 for matchers without layers)."""

    matches: np.ndarray
    scores: np.ndarray
    time_s: float = float("nan")
    stop: int = -1
    view: str = ""

    @property
    def num_matches(self) -> int:
        return int(len(self.matches))


def _check_name(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"pair name {name!r} is not a valid HDF5 group name (no '/' allowed)")
    return name


def _open(path: Path, mode: str):
    try:
        return h5py.File(path, mode)
    except OSError as err:
        raise ValueError(f"cannot open the cache {path} ({err}); delete it or pass overwrite=True") from err


def _write_side(group: Any, side: ImageFeatures) -> None:
    for key, value in side.arrays.items():
        group.create_dataset(key, data=np.asarray(value))
    if side.mask is not None:
        group.create_dataset("specular_mask", data=np.asarray(side.mask, dtype=bool), compression="gzip")
    if side.to_image1 is not None:
        group.create_dataset("to_image1", data=np.asarray(side.to_image1, dtype=np.float64))


def _read_side(group: Any) -> ImageFeatures:
    arrays = {k: group[k][()] for k in group.keys() if k not in ("specular_mask", "to_image1")}
    mask = group["specular_mask"][()] if "specular_mask" in group else None
    to_image1 = group["to_image1"][()] if "to_image1" in group else None
    return ImageFeatures(arrays, mask, to_image1)


class _PairGroupsFile:
    """An HDF5 file with one group per pair name."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)

    def names(self) -> List[str]:
        if not self.path.exists():
            return []
        with _open(self.path, "r") as f:
            return sorted(f.keys())


class FeatureCache(_PairGroupsFile):
    """``features.h5``: the features and ground truth of every pair (layout in the module doc)."""

    def views(self) -> Dict[str, Tuple[str, ...]]:
        """The views of image 1 stored for each pair."""
        if not self.path.exists():
            return {}
        with _open(self.path, "r") as f:
            return {name: tuple(sorted(g["views"].keys())) if "views" in g else () for name, g in f.items()}

    def write(self, pair: PairFeatures) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _open(self.path, "a") as f:
            name = _check_name(pair.name)
            if name in f:
                del f[name]
            g = f.create_group(name)
            _write_side(g.create_group("image0"), pair.image0)
            _write_side(g.create_group("image1"), pair.image1)
            for view, side in pair.views.items():
                _write_side(g.create_group(f"views/{_check_name(view)}"), side)
            gg = g.create_group("gt")
            for key, value in pair.gt.items():
                gg.create_dataset(key, data=np.asarray(value, dtype=np.float64))
            g.attrs["info"] = json.dumps(pair.info)

    def read(self, name: str) -> PairFeatures:
        with _open(self.path, "r") as f:
            if name not in f:
                raise KeyError(f"pair {name!r} is not in {self.path} (exported with other settings?)")
            g = f[name]
            views = {v: _read_side(gv) for v, gv in g["views"].items()} if "views" in g else {}
            gt = {k: g["gt"][k][()] for k in g["gt"].keys()}
            return PairFeatures(name, _read_side(g["image0"]), _read_side(g["image1"]), gt,
                                json.loads(g.attrs.get("info", "{}")), views)


class PredictionCache(_PairGroupsFile):
    """``predictions/<method>.h5``: one group per pair (layout in the module doc)."""

    def write_many(self, items: Sequence[Tuple[str, Prediction]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _open(self.path, "a") as f:
            for name, pred in items:
                if name in f:
                    del f[_check_name(name)]
                g = f.create_group(_check_name(name))
                g.create_dataset("matches", data=np.asarray(pred.matches, dtype=np.int64).reshape(-1, 2))
                g.create_dataset("scores", data=np.asarray(pred.scores, dtype=np.float32).reshape(-1))
                g.attrs["time_s"] = float(pred.time_s)
                g.attrs["stop"] = int(pred.stop)
                g.attrs["view"] = pred.view

    def read_all(self) -> Dict[str, Prediction]:
        out: Dict[str, Prediction] = {}
        if not self.path.exists():
            return out
        with _open(self.path, "r") as f:
            for name, g in f.items():
                out[name] = Prediction(g["matches"][()], g["scores"][()], float(g.attrs["time_s"]),
                                       int(g.attrs["stop"]), str(g.attrs.get("view", "")))
        return out


def check_fingerprint(out_dir: Path, fingerprint: Mapping[str, Any], overwrite: bool) -> None:
    """Refuse to reuse the caches of ``out_dir`` if they were made with other settings.

    ``<out_dir>/config.json`` records ``fingerprint`` (the settings that decide features and
    predictions); a later run that differs raises ``ValueError`` naming the keys.
    ``overwrite=True`` deletes the caches instead.
    """
    path = out_dir / "config.json"
    current = json.loads(json.dumps(dict(fingerprint), default=str))
    if overwrite:
        for stale in [out_dir / "features.h5", *sorted((out_dir / "predictions").glob("*.h5"))]:
            if stale.exists():
                stale.unlink()
    elif path.exists():
        previous = json.loads(path.read_text())
        diff = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
        if diff:
            details = ", ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}" for k in diff)
            raise ValueError(
                f"{out_dir} holds predictions made with other settings ({details}); "
                f"use another out_dir or overwrite=True (--overwrite)"
            )
    atomic_write_text(path, json.dumps(current, indent=2) + "\n")


__all__ = [
    "FeatureCache",
    "ImageFeatures",
    "PairFeatures",
    "Prediction",
    "PredictionCache",
    "check_fingerprint",
]
