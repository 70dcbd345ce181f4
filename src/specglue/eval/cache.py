"""The two caches of an evaluation run, in :mod:`specglue.storage`'s layout and part files.

``<out_dir>/features.h5`` (:class:`PairFeaturesFile`) holds one group per pair::

    <pair>/image0/...        image 0 in hloc's per-image layout (:mod:`specglue.storage.hloc`),
                             with its ``specular_mask [H, W]`` when the benchmark has masks
    <pair>/image1/...        the same for image 1
    <pair>/views/<view>/...  extra views of image 1 some methods need (e.g. the image rotated
                             by 90 degrees), with ``to_image1 [3, 3]``
    <pair>/gt/{H_0to1 | K0, K1, T_0to1, ...}
    <pair>/info              JSON metadata (source paths, sampling parameters); written with
                             the rest, so every finished pair holds it

``<out_dir>/predictions/<method>.h5`` (:class:`PredictionsFile`): one group per pair with
``matches [S, 2]``, ``scores [S]`` and attributes ``time_s``, ``stop``, ``view``.

Both files record the run's fingerprint (the settings that decide features and predictions) as
their settings, and :func:`~specglue.storage.check_settings` refuses to add to a file made with
others. Pairs are written to part files (:class:`~specglue.storage.PartJournal`) and merged at
the end of each stage, so a run killed at any moment keeps every finished part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..geometry import warp_points
from ..storage import ImageFeatures, PartJournal, check_settings, open_h5, read_image_features, write_image_features

PathLike = Union[str, Path]

#: part files a stage may leave before they are merged into the output
MERGE_EVERY_PARTS = 64


@dataclass
class PairFeatures:
    """Everything a matcher and a scorer need for one pair (numpy).

    Attributes:
        name: unique pair name (also its HDF5 group name; no ``/``).
        image0, image1: the features of both images, with their specular ``mask`` if any.
        gt: ground truth, e.g. ``{"H_0to1": [3, 3]}`` or ``{"K0", "K1", "T_0to1"}``.
        info: small JSON-able metadata.
        views: extra views of image 1 by name (see :class:`specglue.eval.methods.Method`),
            each with its ``to_image1``.
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
        points = side.keypoints.astype(np.float64)
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


class _PairGroupsFile:
    """An HDF5 file with one group per pair name, written through part files.

    Args:
        path: the file.
        fingerprint: the run's settings, recorded in the file and checked by :meth:`open`
            (None: only read).
    """

    leaf = ""  # the dataset every finished pair's group holds
    what = ""

    def __init__(self, path: PathLike, fingerprint: Optional[Mapping[str, Any]] = None) -> None:
        self.path = Path(path)
        self.fingerprint = None if fingerprint is None else json.loads(json.dumps(dict(fingerprint), default=str))
        self.journal = PartJournal(self.path, self.leaf, self.what)

    def open(self, overwrite: bool = False) -> "_PairGroupsFile":
        """Make the file ready to add to: delete it (``overwrite``) or check its fingerprint,
        then fold in the parts a killed run left. Returns itself.

        Raises:
            ValueError: the file was made with other settings (naming them), by another
                program or an older specglue, or is unreadable.
        """
        self._writable()
        if overwrite:
            self.journal.discard()
        hint = "use another out_dir or overwrite=True (--overwrite)"
        previous = self.journal.settings()
        if self.path.is_file() and not previous:
            raise ValueError(f"{self.what} {self.path} records no settings (written by an older specglue?): {hint}")
        check_settings(previous, self.fingerprint, f"{self.what} {self.path}", hint)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.journal.done()  # deletes a killed run's half-written parts
        self.journal.merge(self.fingerprint)
        return self

    def _writable(self) -> None:
        if self.fingerprint is None:
            raise ValueError(f"{self.what} {self.path} was opened without a fingerprint: it can only be read")

    def _write(self, write: Any) -> None:
        self._writable()
        self.journal.write_part(self.fingerprint, write)
        if len(self.journal.parts()) >= MERGE_EVERY_PARTS:
            self.commit()

    def commit(self) -> None:
        """Merge the written parts into the file."""
        self.journal.merge(self.fingerprint)

    def _read(self):
        return open_h5(self.path, "r", self.what)

    def names(self) -> List[str]:
        """The pairs the file holds (merged parts only)."""
        if not self.path.exists():
            return []
        with self._read() as f:
            return sorted(f.keys())


class PairFeaturesFile(_PairGroupsFile):
    """``features.h5``: the features and ground truth of every pair (layout in the module doc)."""

    leaf = "info"
    what = "evaluation features file"

    def views(self) -> Dict[str, Tuple[str, ...]]:
        """The views of image 1 stored for each pair."""
        if not self.path.exists():
            return {}
        with self._read() as f:
            return {name: tuple(sorted(g["views"].keys())) if "views" in g else () for name, g in f.items()}

    def write_many(self, pairs: Sequence[PairFeatures]) -> None:
        def write(f: Any) -> None:
            for pair in pairs:
                g = f.create_group(_check_name(pair.name))
                write_image_features(g, "image0", pair.image0)
                write_image_features(g, "image1", pair.image1)
                for view, side in pair.views.items():
                    write_image_features(g, f"views/{_check_name(view)}", side)
                gt = g.create_group("gt")
                for key, value in pair.gt.items():
                    gt.create_dataset(key, data=np.asarray(value, dtype=np.float64))
                g.create_dataset("info", data=json.dumps(pair.info))

        self._write(write)

    def read(self, name: str) -> PairFeatures:
        with self._read() as f:
            if name not in f:
                raise KeyError(f"pair {name!r} is not in {self.path} (exported with other settings?)")
            g = f[name]
            views = {v: read_image_features(g["views"], v) for v in g["views"]} if "views" in g else {}
            gt = {k: g["gt"][k][()] for k in g["gt"].keys()}
            return PairFeatures(name, read_image_features(g, "image0"), read_image_features(g, "image1"), gt,
                                json.loads(g["info"][()]), views)


class PredictionsFile(_PairGroupsFile):
    """``predictions/<method>.h5``: one group per pair (layout in the module doc)."""

    leaf = "matches"
    what = "evaluation predictions file"

    def write_many(self, items: Sequence[Tuple[str, Prediction]]) -> None:
        def write(f: Any) -> None:
            for name, pred in items:
                g = f.create_group(_check_name(name))
                g.create_dataset("matches", data=np.asarray(pred.matches, dtype=np.int64).reshape(-1, 2))
                g.create_dataset("scores", data=np.asarray(pred.scores, dtype=np.float32).reshape(-1))
                g.attrs["time_s"] = float(pred.time_s)
                g.attrs["stop"] = int(pred.stop)
                g.attrs["view"] = pred.view

        self._write(write)

    def read_all(self) -> Dict[str, Prediction]:
        out: Dict[str, Prediction] = {}
        if not self.path.exists():
            return out
        with self._read() as f:
            for name, g in f.items():
                out[name] = Prediction(g["matches"][()], g["scores"][()], float(g.attrs["time_s"]),
                                       int(g.attrs["stop"]), str(g.attrs.get("view", "")))
        return out


__all__ = [
    "PairFeatures",
    "PairFeaturesFile",
    "Prediction",
    "PredictionsFile",
]
