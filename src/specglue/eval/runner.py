"""The evaluation runner: any registered benchmark in two loops (export, then score), then reports.

1. **export**: the benchmark's pair builders give images and ground truth; the runner extracts
   features (one extractor for every method, plus the views of image 1 some methods need) into
   ``<out_dir>/features.h5``, then every method matches every pair into
   ``<out_dir>/predictions/<method>.h5``. Pairs already cached are skipped: an interrupted run
   resumes where it stopped (crash-safe part files), and the run's fingerprint recorded in each
   cache refuses caches made with other settings (:mod:`specglue.eval.cache`).
2. **score**: the benchmark's scorer turns each cached prediction into a record, its summarizer
   aggregates them per method, and the runner writes ``results.json`` (configuration, every
   number, per-pair records), ``table.md`` (the benchmark's columns) and ``plots/*.png``.
   :func:`rescore` reruns only this loop.

A benchmark (:class:`Benchmark`) is one module in :mod:`specglue.eval.benchmarks` and one line
in its registry; a method is one module in :mod:`specglue.eval.methods` and one line in its.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from ..confs import EVAL_MAX_KEYPOINTS, EVAL_RESIZE
from ..features.base import network_size
from ..presets import get_preset
from ..weights import extractor_settings
from . import metrics, report
from ..specular import sample_mask
from ..storage import ImageFeatures
from .cache import PairFeatures, PairFeaturesFile, Prediction, PredictionsFile
from .data import SPECULAR_PLACEMENTS
from .methods import DEFAULT_METHODS, Method, MethodContext, View, build_methods

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: keyed images whose features the export remembers (:attr:`PairImages.key0`)
KEPT_IMAGES = 64
#: configuration entries that do not decide features or predictions (left out of the fingerprint)
UNFINGERPRINTED = ("methods", "device", "out_dir", "overwrite", "ransac_threshold")


@dataclass
class PairImages:
    """What a pair builder returns: both images as extracted and the ground truth.

    Attributes:
        name: unique pair name (no ``/``).
        image0, image1: ``[3, H, W]`` float in [0, 1], as stored (real images) or as the
            benchmark synthesized them; the extractor shrinks them to ``resize``, as it does
            for :func:`specglue.match_pair`, and gives keypoints in these pixels.
        gt: ground-truth arrays in pixels of these images (``H_0to1`` ...).
        info: JSON-able metadata.
        mask0, mask1: specular masks ``[H, W]`` bool, or None.
        roi0, roi1: regions of interest ``[H, W]`` bool (the field of view: keypoints are
            detected only inside, see :mod:`specglue.features.base`), or None.
        key0, key1: images with the same key are the same image unchanged, so their features
            are extracted once (None: always extract); e.g. the frame of a sequence.
    """

    name: str
    image0: torch.Tensor
    image1: torch.Tensor
    gt: Dict[str, np.ndarray]
    info: Dict[str, Any] = field(default_factory=dict)
    mask0: Optional[np.ndarray] = None
    mask1: Optional[np.ndarray] = None
    roi0: Optional[np.ndarray] = None
    roi1: Optional[np.ndarray] = None
    key0: Optional[str] = None
    key1: Optional[str] = None


PairBuilder = Tuple[str, Callable[[], PairImages]]


@dataclass
class Plan:
    """A benchmark's pairs for one run: lazy builders, the settings that define them (recorded
    in the configuration and fingerprinted), a title, the default output folder name, and
    whether the pairs carry specular masks (None: when synthetic highlights are drawn)."""

    builders: List[PairBuilder]
    settings: Dict[str, Any]
    title: str
    out_name: str
    has_masks: Optional[bool] = None


@dataclass
class RunOptions:
    """Settings every benchmark takes (the benchmark's own come as extra keyword arguments)."""

    features: str = "aliked"  # extractor and LightGlue preset (aliked, disk, sift, superpoint)
    methods: Optional[Sequence[str]] = None  # None: DEFAULT_METHODS
    specular: Optional[str] = None  # synthetic highlights: None, "independent" or "camera_fixed"
    seed: int = 0
    max_num_keypoints: int = EVAL_MAX_KEYPOINTS
    resize: Optional[int] = EVAL_RESIZE  # long side in px the images are shrunk to; None keeps them
    out_dir: Optional[PathLike] = None  # None: outputs/eval/<benchmark>-<settings>
    overwrite: bool = False  # delete the caches instead of resuming
    device: str = "cpu"
    extractor_conf: Dict[str, Any] = field(default_factory=dict)
    lightglue_conf: Dict[str, Any] = field(default_factory=dict)  # for every LightGlue
    preset: Optional[str] = None  # specglue-* methods: this speed preset's precision and exits (not its keypoints)
    weights: Optional[str] = None  # specglue-* methods: a registry name or checkpoint instead of the official weights
    mnn_ratio: float = 0.8
    ransac_threshold: Optional[float] = None  # None: the benchmark's default

    def __post_init__(self) -> None:
        if self.specular is not None and self.specular not in SPECULAR_PLACEMENTS:
            raise ValueError(f"specular must be None or one of {SPECULAR_PLACEMENTS}, got {self.specular!r}")
        self.extractor_conf = extractor_settings(self.weights, self.extractor_conf, self.features)
        self.lightglue_conf = dict(self.lightglue_conf or {})
        if self.preset is not None:
            get_preset(self.preset)  # a ValueError naming the presets before anything runs
        self.methods = list(self.methods) if self.methods is not None else list(DEFAULT_METHODS)

    def extraction(self) -> Dict[str, Any]:
        """The extractor's settings: images go to it as stored (or as the benchmark synthesized
        them) and it shrinks them to ``resize``, the path of :func:`specglue.match_pair`."""
        return {"max_num_keypoints": int(self.max_num_keypoints), "resize": self.resize, **self.extractor_conf}

    def network_scale(self, height: int, width: int) -> Tuple[float, float]:
        """``(sx, sy)``: the factors by which the extractor shrinks an image of ``height x
        width`` px (1 when it keeps it), so that a benchmark can state a threshold in the pixels
        the network sees."""
        conf = self.extraction()
        size = network_size(height, width, conf["resize"], bool(conf.get("upsample", False)))
        return (1.0, 1.0) if size is None else (size[1] / width, size[0] / height)


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: how it builds pairs, scores a prediction, aggregates and reports.

    Attributes:
        name: its registry name (``specglue eval <name>``).
        help: one line for ``--help``.
        prepare: ``(options, **settings) -> Plan``.
        score_pair: ``(pair, prediction, config) -> record`` (numbers of one pair).
        summarize: ``(records, n_layers) -> summary`` (numbers of one method).
        columns: the Markdown table's ``(header, key(s), format(s))``.
        plot: ``(summaries, records, plots_dir, title) -> [png paths]``.
        ransac_threshold: the robust estimator's default inlier threshold in px.
    """

    name: str
    help: str
    prepare: Callable[..., Plan]
    score_pair: Callable[[PairFeatures, Prediction, Mapping[str, Any]], Dict[str, Any]]
    summarize: Callable[[Sequence[Mapping[str, Any]], int], Dict[str, Any]]
    columns: Sequence[report.Column]
    plot: Callable[[Mapping[str, Any], Mapping[str, List[Dict[str, Any]]], Path, str], List[Path]]
    ransac_threshold: float = 3.0


# ----------------------------------------------------------------------------------------
# Loop 1: export
# ----------------------------------------------------------------------------------------


class _LazyExtractor:
    """The extractor of a run, built on first use (a fully cached run never builds it); it
    remembers the features of the last :data:`KEPT_IMAGES` keyed images (:attr:`PairImages.key0`)."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.model: Any = None
        self.kept: "OrderedDict[str, ImageFeatures]" = OrderedDict()

    def __call__(self, image: torch.Tensor, roi: Optional[np.ndarray] = None) -> ImageFeatures:
        """The features of one ``[3, H, W]`` image, detected inside ``roi [H, W]`` if given."""
        if not isinstance(image, torch.Tensor) or image.ndim != 3:
            raise ValueError(f"image must be a torch tensor [C, H, W], got {getattr(image, 'shape', type(image))}")
        if self.model is None:
            from ..features import build_extractor

            self.model = build_extractor(self.options.features, **self.options.extraction()).eval()
            self.model = self.model.to(self.options.device)
        return ImageFeatures.from_extractor(self.model.extract(image, roi=roi))

    def keyed(self, key: Optional[str], image: torch.Tensor, roi: Optional[np.ndarray]) -> ImageFeatures:
        """The features of an image that ``key`` names (extracted once while kept)."""
        if key is None:
            return self(image, roi)
        if key in self.kept:
            self.kept.move_to_end(key)
            return self.kept[key]
        feats = self.kept[key] = self(image, roi)
        if len(self.kept) > KEPT_IMAGES:
            self.kept.popitem(last=False)
        return feats


def pair_features(images: PairImages, extract: _LazyExtractor, views: Mapping[str, View]) -> PairFeatures:
    """Extract both images and the requested views of image 1."""
    image0 = dataclasses.replace(extract.keyed(images.key0, images.image0, images.roi0), mask=images.mask0)
    image1 = dataclasses.replace(extract.keyed(images.key1, images.image1, images.roi1), mask=images.mask1)
    extra = {}
    for name, view in views.items():
        image, mask, roi, to_image1 = view(images.image1, images.mask1, images.roi1)
        extra[name] = dataclasses.replace(extract(image, roi), mask=mask, to_image1=to_image1)
    return PairFeatures(images.name, image0, image1, images.gt, images.info, extra)


def export_features(builders: Sequence[PairBuilder], cache: PairFeaturesFile, extract: _LazyExtractor,
                    views: Mapping[str, View], *, flush_every: int = 16) -> None:
    """Build and store every pair not yet in ``cache`` (or stored without a needed view)."""
    have = cache.views()
    todo = [(n, b) for n, b in builders if n not in have or not set(views) <= set(have[n])]

    def built() -> Iterator[PairFeatures]:
        for name, build in tqdm(todo, desc="features", leave=False):
            images = build()
            if images.name != name:
                raise RuntimeError(f"pair builder for {name!r} returned {images.name!r}")
            yield pair_features(images, extract, views)

    write_in_parts(cache, built(), flush_every)


def write_in_parts(cache: Union[PairFeaturesFile, PredictionsFile], items: Iterable[Any], flush_every: int) -> None:
    """Write ``items`` to ``cache`` as they come, a part file every ``flush_every`` (what a killed
    run keeps), then merge the parts."""
    buffer: List[Any] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= flush_every:
            cache.write_many(buffer)
            buffer = []
    if buffer:
        cache.write_many(buffer)
    cache.commit()


def export_predictions(features: PairFeaturesFile, methods: Sequence[Method], predictions_dir: PathLike,
                       fingerprint: Mapping[str, Any], *, flush_every: int = 16) -> None:
    """Match every cached pair with every method and store the predictions.

    Pairs already in a method's cache are skipped. Each method runs once untimed on the first
    pair (warm-up), then each pair is timed with ``time.perf_counter`` around
    :meth:`Method.match` (input conversion included, feature extraction excluded).
    """
    predictions_dir = Path(predictions_dir)
    names = features.names()
    for method in methods:
        cache = PredictionsFile(predictions_dir / f"{method.name}.h5", fingerprint).open()
        done = set(cache.names())
        todo = [n for n in names if n not in done]
        if not todo:
            logger.info("%s: all %d pairs already exported", method.name, len(names))
            continue
        method.match(features.read(todo[0]))  # warm-up, untimed
        write_in_parts(cache, timed_predictions(method, features, todo), flush_every)


def timed_predictions(method: Method, features: PairFeaturesFile, names: Sequence[str]
                      ) -> Iterator[Tuple[str, Prediction]]:
    """``(name, prediction)`` of each pair, timed around :meth:`Method.match`."""
    for name in tqdm(names, desc=f"match {method.name}", leave=False):
        pair = features.read(name)
        start = time.perf_counter()
        pred = method.match(pair)
        pred.time_s = time.perf_counter() - start
        yield name, pred


# ----------------------------------------------------------------------------------------
# Loop 2: score and report
# ----------------------------------------------------------------------------------------


def specular_share(pair: PairFeatures, pred: Prediction) -> float:
    """Share of the matches with at least one keypoint on a specular pixel; nan without masks."""
    image1 = pair.side1(pred.view)
    if pair.image0.mask is None or image1.mask is None or pred.num_matches == 0:
        return float("nan")
    on = [sample_mask(torch.from_numpy(side.mask)[None], torch.from_numpy(side.keypoints[idx])[None])[0].numpy() >= 0.5
          for side, idx in ((pair.image0, pred.matches[:, 0]), (image1, pred.matches[:, 1]))]
    return float(np.mean(on[0] | on[1]))


def score(out_dir: PathLike, benchmark: Benchmark, config: Mapping[str, Any],
          methods: Sequence[Mapping[str, Any]]) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[Dict[str, Any]]]]:
    """Loop 2: records and summaries of the cached predictions of ``methods`` (descriptions
    with ``name`` and ``n_layers``)."""
    out_dir = Path(out_dir)
    cache = PairFeaturesFile(out_dir / "features.h5")
    names = cache.names()
    if not names:
        raise ValueError(f"{cache.path} holds no pair: run the export first")
    preds = {m["name"]: PredictionsFile(out_dir / "predictions" / f"{m['name']}.h5").read_all() for m in methods}
    records: Dict[str, List[Dict[str, Any]]] = {m: [] for m in preds}
    for name in tqdm(names, desc="score", leave=False):
        pair = cache.read(name)
        for method, cached in preds.items():
            if name not in cached:
                raise ValueError(f"pair {name!r} has no prediction of {method!r} in {out_dir / 'predictions'}")
            pred = cached[name]
            records[method].append({
                "pair": name,
                "num_matches": pred.num_matches,
                "num_keypoints0": len(pair.image0.keypoints),
                "num_keypoints1": len(pair.side1(pred.view).keypoints),
                "view": pred.view,
                "time_s": pred.time_s,
                "stop": pred.stop,
                "specular_match_share": specular_share(pair, pred),
                **benchmark.score_pair(pair, pred, config),
            })
    summaries = {m["name"]: benchmark.summarize(records[m["name"]], int(m.get("n_layers", 0))) for m in methods}
    return summaries, records


def write_reports(out_dir: Path, benchmark: Benchmark, config: Mapping[str, Any],
                  methods: Sequence[Mapping[str, Any]], summaries: Mapping[str, Any],
                  records: Mapping[str, List[Dict[str, Any]]], title: str) -> Dict[str, Any]:
    """``results.json``, ``table.md`` and ``plots/``; returns the results dict."""
    table = report.markdown_table(summaries, benchmark.columns)
    plots = benchmark.plot(summaries, records, out_dir / "plots", title)
    stop_plot = report.plot_stop_histogram(summaries, out_dir / "plots" / "stop_layers.png")
    if stop_plot is not None:
        plots.append(stop_plot)
    report.write_text(table, out_dir / "table.md")
    results = {
        "benchmark": benchmark.name,
        "title": title,
        "config": dict(config),
        "methods": list(methods),
        "thresholds": {
            "match_px": metrics.MATCH_THRESHOLDS,
            "homography_auc_px": metrics.HOMOGRAPHY_AUC_THRESHOLDS,
            "pose_auc_deg": metrics.POSE_AUC_THRESHOLDS,
            "curve_px": metrics.CURVE_THRESHOLDS,
        },
        "summary": summaries,
        "per_pair": records,
        "table": table,
        "files": {"json": out_dir / "results.json", "table": out_dir / "table.md", "plots": plots},
    }
    report.write_json(results, out_dir / "results.json")
    return results


# ----------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------


def run(bench: Benchmark, **kwargs: Any) -> Dict[str, Any]:
    """Run a benchmark (both loops) and write its reports.

    Args:
        bench: the benchmark (:data:`specglue.eval.benchmarks.BENCHMARKS`).
        kwargs: :class:`RunOptions` fields and the benchmark's own settings (the keyword
            arguments of its ``prepare``).

    Returns:
        ``{"benchmark", "title", "config", "methods", "summary": {method: numbers},
        "per_pair", "table": Markdown, "files"}`` (also in ``<out_dir>/results.json``).
    """
    common = {f.name for f in dataclasses.fields(RunOptions)}
    options = RunOptions(**{k: v for k, v in kwargs.items() if k in common})
    if options.ransac_threshold is None:
        options.ransac_threshold = bench.ransac_threshold
    plan = bench.prepare(options, **{k: v for k, v in kwargs.items() if k not in common})
    out_dir = Path(options.out_dir) if options.out_dir is not None else (
        Path("outputs") / "eval" / f"{bench.name}-{options.extractor_conf.get('model_name', options.features)}"
                                   f"-n{options.max_num_keypoints}-r{options.resize or 'orig'}-{plan.out_name}"
                                   f"{'-mp' if options.lightglue_conf.get('mp') else ''}"
                                   f"{'-' + options.preset if options.preset else ''}")
    config = {"benchmark": bench.name, **dataclasses.asdict(options), "extractor": options.extraction(),
              "out_dir": str(out_dir), **plan.settings}
    logger.info("%s evaluation, config: %s", bench.name, config)
    specglue_conf = get_preset(options.preset).lightglue_conf(options.device) if options.preset else {}
    context = MethodContext(options.features, torch.device(options.device), options.lightglue_conf,
                            options.mnn_ratio, weights=options.weights, specglue_conf=specglue_conf)
    has_masks = options.specular is not None if plan.has_masks is None else plan.has_masks
    methods = build_methods(options.methods, context, has_masks=has_masks)
    fingerprint = {k: v for k, v in config.items() if k not in UNFINGERPRINTED}
    if options.overwrite:
        shutil.rmtree(out_dir / "predictions", ignore_errors=True)
    cache = PairFeaturesFile(out_dir / "features.h5", fingerprint).open(overwrite=options.overwrite)
    views = {name: view for m in methods for name, view in m.views.items()}
    export_features(plan.builders, cache, _LazyExtractor(options), views)
    extra = sorted(set(cache.names()) - {n for n, _ in plan.builders})
    if extra:
        raise ValueError(f"{cache.path} holds {len(extra)} pairs this run does not define "
                         f"(e.g. {extra[0]!r}); use another out_dir or overwrite=True")
    export_predictions(cache, methods, out_dir / "predictions", fingerprint)
    descriptions = [m.description() for m in methods]
    summaries, records = score(out_dir, bench, config, descriptions)
    return write_reports(out_dir, bench, config, descriptions, summaries, records, plan.title)


def read_results(out_dir: PathLike) -> Dict[str, Any]:
    """The ``results.json`` of a finished run.

    Raises:
        ValueError: the folder holds none.
    """
    path = Path(out_dir) / "results.json"
    if not path.exists():
        raise ValueError(f"{path} not found: rescore needs a folder written by a finished run")
    return json.loads(path.read_text())


def rescore(out_dir: PathLike, bench: Benchmark, method_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Loop 2 only: score the caches of a finished run of ``bench`` again and rewrite its
    reports."""
    out_dir = Path(out_dir)
    previous = read_results(out_dir)
    if previous["benchmark"] != bench.name:
        raise ValueError(f"{out_dir} holds a {previous['benchmark']!r} run, not {bench.name!r}")
    methods = [m for m in previous["methods"] if method_names is None or m["name"] in method_names]
    summaries, records = score(out_dir, bench, previous["config"], methods)
    return write_reports(out_dir, bench, previous["config"], methods, summaries, records, previous["title"])


__all__ = [
    "Benchmark",
    "PairBuilder",
    "PairImages",
    "Plan",
    "RunOptions",
    "export_features",
    "export_predictions",
    "read_results",
    "rescore",
    "run",
    "score",
    "write_reports",
]
