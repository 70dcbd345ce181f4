"""Typed training configuration: dataclasses, read from YAML with ``key=value`` overrides.

A run is described by one :class:`TrainConf` (``data``, ``features``, ``model``, ``optim``,
``run``). :func:`load_config` reads a YAML file (any subset of the fields; the rest keep their
defaults), applies dotted overrides such as ``optim.lr=3e-4`` or ``data.pairs.max_angle_deg=180``
(values parsed as YAML), and checks every key and type: an unknown key or a wrong type raises
``ValueError`` naming it. :func:`config_to_dict` / :func:`dump_config` give the resolved
config that every run prints and saves as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..confs import MASK_MARGIN
from ..optional import require
from .data import DepthDataConf, HomographyDataConf

PRECISIONS = ("fp32", "bf16", "fp16")
DATA_KINDS = ("homography", "depth", "mixed")


@dataclass(frozen=True)
class DataConf:
    kind: str = "homography"  # homography (any image folder) | depth (scenes with depth and poses) | mixed (both)
    images: Tuple[str, ...] = ()  # homography: image folders / files (searched recursively)
    # depth: scene folders (scene.json, or an endoscopy structure-from-motion sequence; see
    # train.data.DepthPairs)
    scenes: Tuple[str, ...] = ()
    depth_share: float = 0.5  # mixed: share of the items that are depth pairs
    val_fraction: float = 0.1  # share of the images / scene pairs held out for validation (0: none)
    train_pairs: int = 10000  # pairs per epoch (homography: items drawn from the images)
    val_pairs: int = 64  # validation pairs
    homography: HomographyDataConf = HomographyDataConf()
    depth: DepthDataConf = DepthDataConf()


@dataclass(frozen=True)
class FeaturesConf:
    name: str = "aliked"  # frozen extractor: aliked | disk | sift | superpoint
    variant: Optional[str] = None  # ALIKED model_name (aliked-n16rot for rotation-aware); None: default
    max_keypoints: int = 512  # per image, exactly (detection_threshold 0: always the top-k)
    detection_threshold: float = 0.0
    cache: bool = True  # keep the features of each item in an HDF5 file and reuse them next epoch


@dataclass(frozen=True)
class ModelConf:
    features: Optional[str] = "aliked"  # LightGlue preset (input_dim, ...); None: set the sizes below
    weights: Optional[str] = None  # start from: registry name, checkpoint path; None: random
    specular_mode: str = "cross"  # how the masks enter the matcher while training: hard | cross | soft | off
    withhold_masks: float = 0.2  # probability that a pair is given without masks
    mask_margin: int = MASK_MARGIN  # px: a keypoint this close to a highlight counts as specular (model input)
    n_layers: Optional[int] = None  # None: the preset's (9)
    descriptor_dim: Optional[int] = None  # None: the preset's (256)
    num_heads: Optional[int] = None  # None: the preset's (4)
    filter_threshold: float = 0.1  # match threshold of the metrics and the confidence loss


@dataclass(frozen=True)
class OptimConf:
    steps: int = 20000
    batch_size: int = 4  # pairs per step and process
    lr: float = 1e-4
    weight_decay: float = 0.01  # AdamW
    warmup_steps: int = 500  # linear from 0
    decay_start: int = 10000  # step where the exponential decay begins
    decay_half_life: int = 5000  # steps for the learning rate to halve after decay_start
    clip_grad_norm: float = 1.0  # 0: no clipping
    gamma: float = 1.0  # deep supervision: weight gamma ** (L - 1 - i) of layer i
    balance: float = 0.5  # weight of the match term against the unmatched term of the NLL


@dataclass(frozen=True)
class RunConf:
    output: str = "outputs/train"  # checkpoints, config.yaml, metrics.csv, TensorBoard events
    seed: int = 0
    device: str = "cpu"  # cpu | cuda (under torchrun: cuda:LOCAL_RANK)
    precision: str = "fp32"  # fp32 | bf16 (autocast; CPU or CUDA) | fp16 (CUDA autocast + scaling)
    num_threads: int = 0  # torch CPU threads per process (0: torch's default)
    log_every: int = 10
    val_every: int = 500
    checkpoint_every: int = 200
    tensorboard: bool = True
    resume: bool = True  # continue from output/checkpoint_last.pt when it exists
    progress: bool = True  # tqdm bar
    # --export writes blend * trained + (1 - blend) * start weights (model.weights): below 1 it
    # keeps part of the start model, a weight-space interpolation (WiSE-FT)
    export_blend: float = 1.0


@dataclass(frozen=True)
class TrainConf:
    data: DataConf = DataConf()
    features: FeaturesConf = FeaturesConf()
    model: ModelConf = ModelConf()
    optim: OptimConf = OptimConf()
    run: RunConf = RunConf()

    def __post_init__(self) -> None:
        checks = [
            (self.data.kind in DATA_KINDS, f"data.kind must be one of {DATA_KINDS}, got {self.data.kind!r}"),
            (0.0 <= self.data.val_fraction < 1.0, f"data.val_fraction must be in [0, 1), got {self.data.val_fraction}"),
            (0.0 <= self.data.depth_share <= 1.0, f"data.depth_share must be in [0, 1], got {self.data.depth_share}"),
            (self.data.train_pairs > 0, f"data.train_pairs must be > 0, got {self.data.train_pairs}"),
            (self.data.val_pairs >= 0, f"data.val_pairs must be >= 0, got {self.data.val_pairs}"),
            (self.model.specular_mode in ("off", "hard", "cross", "soft"),
             f"model.specular_mode must be one of off, hard, cross, soft; got {self.model.specular_mode!r}"),
            (0.0 <= self.model.withhold_masks <= 1.0,
             f"model.withhold_masks must be in [0, 1], got {self.model.withhold_masks}"),
            (self.features.max_keypoints > 0, f"features.max_keypoints must be > 0, got {self.features.max_keypoints}"),
            (self.optim.steps > 0 and self.optim.batch_size > 0, "optim.steps and optim.batch_size must be > 0"),
            (self.optim.lr > 0, f"optim.lr must be > 0, got {self.optim.lr}"),
            (self.optim.decay_half_life > 0, f"optim.decay_half_life must be > 0, got {self.optim.decay_half_life}"),
            (0.0 <= self.run.export_blend <= 1.0, f"run.export_blend must be in [0, 1], got {self.run.export_blend}"),
            (self.run.precision in PRECISIONS, f"run.precision must be one of {PRECISIONS}, got {self.run.precision!r}"),
            (self.run.log_every > 0 and self.run.val_every > 0 and self.run.checkpoint_every > 0,
             "run.log_every, run.val_every and run.checkpoint_every must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# ---------------------------------------------------------------------------- building


def _convert(value: Any, kind: Any, where: str) -> Any:
    """``value`` as the annotated type ``kind`` (dataclass, Optional, Tuple, List, scalars)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a mapping of {kind.__name__} fields, got {value!r}")
        return build(kind, value, where)
    if origin is Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where)
    if origin in (tuple, list, Tuple, List):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ValueError(f"{where} must be a list, got {value!r}")
        item = args[0] if args else Any
        if origin is tuple and len(args) >= 2 and args[1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"{where} must have {len(args)} entries, got {value!r}")
            return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        items = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    return value


def build(cls: type, values: Mapping[str, Any], where: str = "") -> Any:
    """A ``cls`` dataclass from a (nested) mapping; unknown keys raise ``ValueError``."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ValueError(f"unknown config key(s) {[prefix + k for k in unknown]}; known: {sorted(names)}")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    return cls(**kwargs)


def config_to_dict(conf: Any) -> Dict[str, Any]:
    """A dataclass config as nested plain dicts / lists (tuples become lists), for YAML / JSON."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value
    return plain(conf)


def _yaml():
    return require("yaml", "train", "reading training configs")


def parse_overrides(overrides: Sequence[str]) -> Dict[str, Any]:
    """``["optim.lr=3e-4", "run.output=x"]`` as a nested dict (values parsed as YAML)."""
    yaml = _yaml()
    tree: Dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r} conflicts with another override of {part!r}")
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else ""
    return tree


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
    """Nested dict merge: ``update`` wins, mappings merge key by key."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: Optional[Union[str, Path]] = None, overrides: Sequence[str] = ()) -> TrainConf:
    """The :class:`TrainConf` of a YAML file (or the defaults) with ``key=value`` overrides.

    Relative ``data.images`` / ``data.scenes`` stay relative to the working directory.
    """
    values: Dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: {path}")
        try:
            loaded = _yaml().safe_load(path.read_text())
        except Exception as err:  # yaml's errors
            raise ValueError(f"could not parse the training config {path}: {err}") from err
        if loaded is not None and not isinstance(loaded, Mapping):
            raise ValueError(f"training config {path} must be a mapping of sections, got {type(loaded).__name__}")
        values = dict(loaded or {})
    values = merge(values, parse_overrides(overrides))
    return build(TrainConf, values)


def dump_config(conf: TrainConf) -> str:
    """The resolved config as YAML text."""
    return _yaml().safe_dump(config_to_dict(conf), sort_keys=False)


__all__ = ["DATA_KINDS", "PRECISIONS", "DataConf", "FeaturesConf", "ModelConf", "OptimConf", "RunConf", "TrainConf",
           "build", "config_to_dict", "dump_config", "load_config", "merge", "parse_overrides"]
