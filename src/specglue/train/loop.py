"""The training loop: one config, one process or N under ``torchrun`` (DDP).

:func:`train` builds the data (:mod:`~specglue.train.data`), the frozen extractor and batches
(:mod:`~specglue.train.batches`), the matcher, AdamW with linear warm-up and exponential decay,
and runs ``optim.steps`` steps of :meth:`specglue.LightGlue.forward_train` +
:func:`~specglue.train.losses.lightglue_loss`, with gradient clipping and, as options, bf16
autocast (CPU or CUDA) or fp16 autocast with loss scaling (CUDA).

Output folder (``run.output``)::

    config.yaml          the resolved config (also logged at the start)
    checkpoint_last.pt   every run.checkpoint_every steps, written atomically (temp + rename):
                         model (official key layout), optimizer, scheduler, scaler, RNG states,
                         step, best validation, config
    model_best.pt        weights (official keys) of the best validation loss so far (the
                         starting weights are validated at step 0 and count)
    metrics.csv          train rows every run.log_every steps, val rows at step 0 and every
                         run.val_every
    tensorboard/         the same scalars as TensorBoard events (run.tensorboard)
    cache/               HDF5 feature caches (features.cache)

Both ``.pt`` files load with ``LightGlue(features=..., weights=PATH)``. A run whose output
holds a checkpoint continues from it (``run.resume``): the data order is a pure function of
the step, so a resumed run gives the parameters of an uninterrupted one, bit for bit, at the
same thread count. Under ``torchrun`` every process trains on its own shard of the items
(gloo on CPU, NCCL on CUDA); process 0 validates, logs and writes.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..atomic import atomic_write, atomic_write_text
from ..eval.metrics import label_match_counts, label_precision_recall
from ..images import list_images
from ..model.heads import filter_matches
from ..model.lightglue import LightGlue
from ..optional import require
from .batches import BatchBuilder, ItemOrder
from .config import TrainConf, config_to_dict, dump_config
from .data import DepthPairs, HomographyPairs, MixedPairs
from .losses import lightglue_loss

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint_last.pt"
BEST = "model_best.pt"
METRICS = "metrics.csv"
COLUMNS = ("step", "split", "lr", "loss", "nll", "nll_last", "confidence", "label_precision", "label_recall",
           "matches", "seconds_per_step")
#: columns of runs logged before their rename, and their names now
RENAMED_COLUMNS = {"precision": "label_precision", "recall": "label_recall"}


# ---------------------------------------------------------------------------- processes


def distributed_context(conf: TrainConf) -> Tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; starts the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(conf.run.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("run.device is cuda but CUDA is not available")
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


# ---------------------------------------------------------------------------- data


def _split(items: List[Any], fraction: float, seed: int) -> Tuple[List[Any], List[Any]]:
    """Train / validation lists (a seeded shuffle); without a held-out share both are all items."""
    if fraction <= 0 or len(items) < 2:
        return items, items
    order = np.random.default_rng([seed, 31]).permutation(len(items))
    count = max(1, int(round(fraction * len(items))))
    val = [items[i] for i in sorted(order[:count])]
    train = [items[i] for i in sorted(order[count:])]
    return train, val


def _homography_datasets(conf: TrainConf) -> Tuple[HomographyPairs, HomographyPairs]:
    data = conf.data
    if not data.images:
        raise ValueError(f"data.images must name at least one image folder or file (data.kind: {data.kind})")
    files: List[Path] = []
    for source in data.images:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"data.images: {path} does not exist")
        files += list_images(path) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"data.images {list(data.images)} hold no images")
    train_files, val_files = _split(sorted(set(files)), data.val_fraction, conf.run.seed)
    val_conf = dataclasses.replace(data.homography, seed=data.homography.seed + 1)
    return (HomographyPairs(train_files, data.homography, length=data.train_pairs),
            HomographyPairs(val_files, val_conf, length=max(1, data.val_pairs)))


def _depth_datasets(conf: TrainConf) -> Tuple[DepthPairs, DepthPairs]:
    data = conf.data
    if not data.scenes:
        raise ValueError(f"data.scenes must name at least one scene folder (data.kind: {data.kind})")
    scenes, pairs = {}, []
    for folder in data.scenes:
        images, scene_pairs = DepthPairs.read_scene(folder, data.depth)
        scenes[Path(folder)] = images
        pairs += scene_pairs
    train_pairs, val_pairs = _split(pairs, data.val_fraction, conf.run.seed)
    val_conf = dataclasses.replace(data.depth, seed=data.depth.seed + 1)
    return (DepthPairs(train_pairs, scenes, data.depth, length=data.train_pairs),
            DepthPairs(val_pairs, scenes, val_conf, length=max(1, data.val_pairs)))


def build_datasets(conf: TrainConf) -> Tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    """Training and validation datasets; validation items use other seeds and held-out
    images (homography) or pairs (depth) when ``data.val_fraction`` > 0."""
    data = conf.data
    if data.kind == "homography":
        return _homography_datasets(conf)
    if data.kind == "depth":
        return _depth_datasets(conf)
    (train_h, val_h), (train_d, val_d) = _homography_datasets(conf), _depth_datasets(conf)
    return (MixedPairs(train_h, train_d, data.depth_share, data.train_pairs, conf.run.seed),
            MixedPairs(val_h, val_d, data.depth_share, max(1, data.val_pairs), conf.run.seed + 1))


def _item_settings(dataset: torch.utils.data.Dataset) -> Dict[str, Any]:
    """What a dataset's items depend on, for the feature cache's settings."""
    if isinstance(dataset, MixedPairs):
        return {"homography": _item_settings(dataset.homography), "depth": _item_settings(dataset.depth),
                "depth_share": dataset.depth_share, "seed": dataset.seed}
    if isinstance(dataset, DepthPairs):
        items = [[str(part) for part in pair] for pair in dataset.pairs]
    else:
        items = [str(path) for path in dataset.files]
    return {"data": config_to_dict(dataset.conf), "items": items}


def build_batches(conf: TrainConf, dataset: torch.utils.data.Dataset, split: str, rank: int) -> BatchBuilder:
    features = conf.features
    extractor_conf: Dict[str, Any] = {"max_num_keypoints": features.max_keypoints,
                                      "detection_threshold": features.detection_threshold, "resize": None}
    if features.variant is not None:
        extractor_conf["model_name"] = features.variant
    depth = conf.data.depth
    labels = {"homography": {"positive_px": 3.0, "negative_px": 3.0},  # glue-factory's homography thresholds
              "depth": {"positive_px": depth.positive_px, "negative_px": depth.negative_px,
                        "depth_tolerance": depth.depth_tolerance}}
    data_settings = {**_item_settings(dataset), "split": split}
    cache = Path(conf.run.output) / "cache" if features.cache else None
    return BatchBuilder(dataset, features.name, extractor_conf, mask_margin=conf.model.mask_margin,
                        withhold_masks=conf.model.withhold_masks if split == "train" else 0.0,
                        masked_unmatched=conf.model.specular_mode != "off",
                        seed=conf.run.seed, cache=cache, cache_name=f"{split}-rank{rank}",
                        cache_settings=data_settings, labels=labels)


# ---------------------------------------------------------------------------- model


def build_model(conf: TrainConf) -> LightGlue:
    """The matcher to train: the preset's sizes, the start weights (random when None)."""
    model_conf = conf.model
    sizes = {key: getattr(model_conf, key) for key in ("n_layers", "descriptor_dim", "num_heads")
             if getattr(model_conf, key) is not None}
    preset: Dict[str, Any] = {}
    if model_conf.features is not None:
        if model_conf.features not in LightGlue.features:
            raise ValueError(f"model.features must be one of {sorted(LightGlue.features)}, got {model_conf.features!r}")
        preset = {k: v for k, v in LightGlue.features[model_conf.features].items() if k != "weights"}
    return LightGlue(features=None, **preset, **sizes, weights=model_conf.weights,
                     specular_mode=model_conf.specular_mode, mask_margin=model_conf.mask_margin,
                     filter_threshold=model_conf.filter_threshold)


class TrainingForward(torch.nn.Module):
    """``forward`` = :meth:`LightGlue.forward_train`, so that DDP sees (and syncs) it."""

    def __init__(self, matcher: LightGlue) -> None:
        super().__init__()
        self.matcher = matcher

    def forward(self, data: Dict[str, Any]) -> Dict[str, Any]:
        return self.matcher.forward_train(data)


def learning_rate_factor(conf: TrainConf, step: int) -> float:
    """Linear warm-up over ``optim.warmup_steps``, then halving every ``decay_half_life``
    steps after ``decay_start``."""
    optim = conf.optim
    warmup = min(1.0, (step + 1) / optim.warmup_steps) if optim.warmup_steps > 0 else 1.0
    return warmup * 0.5 ** (max(0, step - optim.decay_start) / optim.decay_half_life)


def _autocast(conf: TrainConf, device: torch.device) -> contextlib.AbstractContextManager:
    if conf.run.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if conf.run.precision == "fp16":
        if device.type != "cuda":
            raise ValueError("run.precision fp16 needs run.device cuda (use bf16 on the CPU)")
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _to_device(data: Any, device: torch.device) -> Any:
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, dict):
        return {k: _to_device(v, device) for k, v in data.items()}
    return data


def _float_outputs(outputs: Dict[str, Any]) -> Dict[str, Any]:
    """Loss in fp32 whatever the autocast dtype."""
    return {**outputs, "log_assignment": [la.float() for la in outputs["log_assignment"]],
            "confidence": [(c0.float(), c1.float()) for c0, c1 in outputs["confidence"]]}


def match_counts(log_assignment: torch.Tensor, matches0: torch.Tensor, threshold: float) -> Dict[str, float]:
    """:func:`~specglue.eval.metrics.label_match_counts` of the matches a layer's assignment
    ``[B, M + 1, N + 1]`` gives at ``threshold``, against the labels ``matches0 [B, M]``."""
    predicted = filter_matches(log_assignment.detach().float(), threshold)[0]  # [B, M]
    return label_match_counts(predicted, matches0)


# ---------------------------------------------------------------------------- checkpoints


def _rng_state() -> Dict[str, Any]:
    state: Dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_csv(path: Path, rows: List[Dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def save_atomically(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename (:func:`specglue.atomic.atomic_write`)."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _model_state(matcher: LightGlue) -> Dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in matcher.state_dict().items()}


def _comparable(conf: Dict[str, Any]) -> Dict[str, Any]:
    """What a resumed run must share with its checkpoint: everything but ``run`` and ``optim.steps``."""
    out = {k: v for k, v in conf.items() if k != "run"}
    out["optim"] = {k: v for k, v in out["optim"].items() if k != "steps"}
    return out


# ---------------------------------------------------------------------------- logging


class MetricsLog:
    """``metrics.csv`` (and TensorBoard) of process 0; a resumed run drops rows after its step."""

    def __init__(self, folder: Path, resume_step: int, tensorboard: bool) -> None:
        self.path = folder / METRICS
        rows: List[Dict[str, str]] = []
        if resume_step > 0 and self.path.is_file():
            with self.path.open(newline="") as f:
                rows = [{RENAMED_COLUMNS.get(k, k): v for k, v in r.items()}
                        for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        atomic_write(self.path, lambda tmp: _write_csv(tmp, rows))
        self.writer = None
        if tensorboard:
            require("tensorboard", "train", "TensorBoard logs (or set run.tensorboard=false)")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(folder / "tensorboard"), purge_step=resume_step + 1 if resume_step else None)

    def write(self, step: int, split: str, values: Dict[str, float]) -> None:
        row = {"step": step, "split": split, **{k: f"{v:.6g}" for k, v in values.items() if k in COLUMNS}}
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, COLUMNS).writerow(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# ---------------------------------------------------------------------------- the loop


class Trainer:
    """One process of a training run (see the module docstring). ``run()`` trains to
    ``optim.steps`` and returns the output folder."""

    def __init__(self, conf: TrainConf) -> None:
        self.conf = conf
        self.rank, self.world, self.device = distributed_context(conf)
        if conf.run.num_threads > 0:
            torch.set_num_threads(conf.run.num_threads)
        self.output = Path(conf.run.output)
        if self.rank == 0:
            self.output.mkdir(parents=True, exist_ok=True)
        _barrier(self.world)
        torch.manual_seed(conf.run.seed)
        random.seed(conf.run.seed)
        self.matcher = build_model(conf).to(self.device).train()
        module: torch.nn.Module = TrainingForward(self.matcher)
        if self.world > 1:
            module = torch.nn.parallel.DistributedDataParallel(
                module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.module = module
        self.optimizer = torch.optim.AdamW(self.matcher.parameters(), lr=conf.optim.lr,
                                           weight_decay=conf.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: learning_rate_factor(conf, s))
        self.scaler = torch.amp.GradScaler("cuda", enabled=conf.run.precision == "fp16")
        train_set, val_set = build_datasets(conf)
        self.train_batches = build_batches(conf, train_set, "train", self.rank)
        self.val_batches = build_batches(conf, val_set, "val", 0) if self.rank == 0 and conf.data.val_pairs else None
        self.order = ItemOrder(len(train_set), conf.optim.batch_size, conf.run.seed, self.rank, self.world)
        self.step, self.best = 0, math.inf

    # -------------------------------------------------------------- state
    def state(self) -> Dict[str, Any]:
        return {"model": _model_state(self.matcher), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "rng": _rng_state(), "step": self.step, "best": self.best, "world_size": self.world,
                "config": config_to_dict(self.conf)}

    def save(self) -> None:
        if self.rank == 0:
            save_atomically(self.state(), self.output / CHECKPOINT)
        _barrier(self.world)

    def resume(self) -> bool:
        path = self.output / CHECKPOINT
        if not (self.conf.run.resume and path.is_file()):
            return False
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for corrupt files
            raise ValueError(f"cannot resume from {path}: {err} (delete it or set run.resume=false)") from err
        saved, current = _comparable(state["config"]), _comparable(config_to_dict(self.conf))
        if saved != current:
            changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise ValueError(f"{path} was written with another config (sections {changed} differ); "
                             "use another run.output or set run.resume=false")
        if state["world_size"] != self.world:
            raise ValueError(f"{path} was written by {state['world_size']} processes, this run has {self.world}")
        self.matcher.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.step, self.best = int(state["step"]), float(state["best"])
        logger.info("resumed %s at step %d", path, self.step)
        return True

    # -------------------------------------------------------------- steps
    def train_step(self, batch: Dict[str, Any]) -> Dict[str, float]:
        """One optimiser step; returns loss sums over the batch's pairs and match counts."""
        conf = self.conf
        data = _to_device(batch["data"], self.device)
        matches0, matches1 = batch["matches0"].to(self.device), batch["matches1"].to(self.device)
        with _autocast(conf, self.device):
            outputs = self.module(data)
        losses = lightglue_loss(_float_outputs(outputs), matches0, matches1, gamma=conf.optim.gamma,
                                balance=conf.optim.balance, filter_threshold=conf.model.filter_threshold)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        if conf.optim.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.matcher.parameters(), conf.optim.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        b = matches0.shape[0]
        counts = match_counts(outputs["log_assignment"][-1], matches0, conf.model.filter_threshold)
        return {"loss": b * float(losses["total"].detach()), "nll": float(losses["nll"].sum().detach()),
                "nll_last": float(losses["per_layer"][-1].sum().detach()),
                "confidence": b * float(losses["confidence"].detach()), **counts}

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        """Loss, label precision and recall of the last layer on the validation pairs (process 0)."""
        assert self.val_batches is not None
        conf = self.conf
        size = conf.optim.batch_size
        self.matcher.eval()
        totals: Dict[str, float] = {}
        pairs = 0
        for start in range(0, conf.data.val_pairs, size):
            batch = self.val_batches.batch(list(range(start, min(start + size, conf.data.val_pairs))))
            matches0, matches1 = batch["matches0"].to(self.device), batch["matches1"].to(self.device)
            with _autocast(conf, self.device):
                outputs = self.matcher.forward_train(_to_device(batch["data"], self.device))
            losses = lightglue_loss(_float_outputs(outputs), matches0, matches1, gamma=conf.optim.gamma,
                                    balance=conf.optim.balance, filter_threshold=conf.model.filter_threshold)
            b = matches0.shape[0]
            values = {"loss": float(losses["nll"].sum()) + b * float(losses["confidence"]),
                      "nll": float(losses["nll"].sum()), "nll_last": float(losses["per_layer"][-1].sum()),
                      "confidence": b * float(losses["confidence"]),
                      **match_counts(outputs["log_assignment"][-1], matches0, conf.model.filter_threshold)}
            for key, value in values.items():
                totals[key] = totals.get(key, 0.0) + value
            pairs += b
        self.matcher.train()
        return _summarize(totals, pairs)

    def run(self) -> Path:
        conf = self.conf
        resumed = self.resume()
        if self.rank == 0:
            text = dump_config(conf)
            logger.info("training config:\n%s", text)
            atomic_write_text(self.output / "config.yaml", text)
        log = MetricsLog(self.output, self.step if resumed else 0, conf.run.tensorboard) if self.rank == 0 else None
        bar = tqdm(total=conf.optim.steps, initial=self.step, desc="train", unit="step",
                   disable=self.rank != 0 or not conf.run.progress)
        window: Dict[str, float] = {}
        window_steps, started = 0, time.perf_counter()
        try:
            if self.step == 0:  # the starting weights: the baseline that best-by-validation must beat
                self._validate_and_keep_best(log)
            while self.step < conf.optim.steps:
                values = self.train_step(self.train_batches.batch(self.order.indices(self.step)))
                self.step += 1
                bar.update(1)
                for key, value in values.items():
                    window[key] = window.get(key, 0.0) + value
                window_steps += 1
                if log is not None and (self.step % conf.run.log_every == 0 or self.step == conf.optim.steps):
                    summary = _summarize(window, window_steps * conf.optim.batch_size)
                    summary["lr"] = self.scheduler.get_last_lr()[0]
                    summary["seconds_per_step"] = (time.perf_counter() - started) / window_steps
                    log.write(self.step, "train", summary)
                    bar.set_postfix(loss=f"{summary['loss']:.3f}", recall=f"{summary['label_recall']:.2f}")
                    window, window_steps, started = {}, 0, time.perf_counter()
                last = self.step == conf.optim.steps
                if self.step % conf.run.val_every == 0 or last:
                    self._validate_and_keep_best(log)
                if self.step % conf.run.checkpoint_every == 0 or last:
                    self.save()
        finally:
            bar.close()
            if log is not None:
                log.close()
            self.train_batches.close()
            if self.val_batches is not None:
                self.val_batches.close()
        return self.output

    def _validate_and_keep_best(self, log: Optional[MetricsLog]) -> None:
        if self.rank == 0 and self.val_batches is not None:
            values = self.validate()
            assert log is not None
            log.write(self.step, "val", values)
            logger.info("step %d validation: loss %.4f label precision %.3f label recall %.3f", self.step,
                        values["loss"], values["label_precision"], values["label_recall"])
            if values["loss"] < self.best:
                self.best = values["loss"]
                save_atomically(_model_state(self.matcher), self.output / BEST)
        _barrier(self.world)


def _summarize(totals: Dict[str, float], pairs: int) -> Dict[str, float]:
    """Per-pair means of the losses, label precision / recall, matches per pair from the counts."""
    out = {k: totals.get(k, 0.0) / max(pairs, 1) for k in ("loss", "nll", "nll_last", "confidence")}
    out.update(label_precision_recall(totals))
    out["matches"] = totals.get("matches", 0.0) / max(pairs, 1)
    return out


def train(conf: TrainConf) -> Path:
    """Train with ``conf`` (see the module docstring); returns the output folder."""
    try:
        return Trainer(conf).run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def export_weights(conf: TrainConf, path: Path) -> Path:
    """Write the run's best weights (``run.output/model_best.pt``) to ``path`` as an fp16 state
    dict in the official key layout, the form specglue ships (half the size; fp16 keeps about 3
    significant digits, far below what changes a match). With ``run.export_blend`` below 1, the
    weights written are ``blend * best + (1 - blend) * start`` (the start: ``model.weights``).
    Written atomically."""
    best = Path(conf.run.output) / BEST
    if not best.is_file():
        raise FileNotFoundError(f"{best} does not exist: train the run first (specglue train CONFIG)")
    state = torch.load(best, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if k != "confidence_thresholds"}
    blend = conf.run.export_blend
    if blend < 1.0:
        start = build_model(conf).state_dict()
        state = {k: blend * v + (1.0 - blend) * start[k] if v.is_floating_point() else v for k, v in state.items()}
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomically(half, path)
    return path


def iter_metrics(path: Path) -> Iterator[Dict[str, Any]]:
    """Rows of a ``metrics.csv`` with numbers parsed."""
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            yield {k: (v if k == "split" else (float(v) if v not in ("", None) else math.nan)) for k, v in row.items()}


__all__ = ["BEST", "CHECKPOINT", "METRICS", "Trainer", "build_datasets", "build_model", "export_weights",
           "iter_metrics", "learning_rate_factor", "match_counts", "save_atomically", "train"]
