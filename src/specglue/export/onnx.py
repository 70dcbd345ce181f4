"""Export :class:`specglue.LightGlue` to ONNX and run the graph with ONNX Runtime.

The exported graph has a **fixed depth**: it runs all ``n_layers`` transformer layers on every
keypoint, with no early stopping (adaptive depth) and no point pruning (adaptive width). An ONNX
graph cannot branch per input, so its results equal the PyTorch model built with
``depth_confidence=-1, width_confidence=-1`` (the same checkpoint), not the adaptive default.

Graph inputs (float32; B pairs, M / N keypoints in image 0 / 1, Din descriptor width; the axes
B, M and N are dynamic)::

    keypoints0    [B, M, 2]    pixel (x, y), integer = pixel centre
    keypoints1    [B, N, 2]
    descriptors0  [B, M, Din]
    descriptors1  [B, N, Din]
    image_size0   [B, 2]       (W, H)
    image_size1   [B, 2]
    scales0, oris0 [B, M]; scales1, oris1 [B, N]    only for add_scale_ori models (SIFT, DoGHardNet)
    specularity0  [B, M]; specularity1 [B, N]       only with ``with_specular=True``; in [0, 1]

Graph outputs::

    matches0          [B, M] int64   index into image 1, -1 = unmatched
    matches1          [B, N] int64   index into image 0, -1 = unmatched
    matching_scores0  [B, M] float32 score of the mutual match (0 when not mutual)
    matching_scores1  [B, N] float32

Specular keypoints (specularity >= 0.5) follow the "hard" specular mode: they are removed as
attention keys (self and cross) and from matching, by an additive 0 / -inf key bias, so the
graph stays static. They still run as queries, exactly as in PyTorch; a query whose keys are all
masked gets a zero message (no NaN), and a side with no usable keypoint matches nothing.
The match threshold (``filter_threshold``) is a constant of the graph.

A region of interest (an endoscope's field of view, ``roi``) acts at detection, before the
graph: features extracted with ``Extractor.extract(image, roi=...)`` need nothing more.

:class:`OnnxMatcher` wraps an exported file behind the input and output dicts of
:meth:`specglue.LightGlue.forward`.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write
from ..confs import SPECULAR_THRESHOLD
from ..model.heads import filter_matches
from ..model.inputs import parse_image
from ..model.lightglue import LightGlue, normalize_keypoints
from ..optional import require

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

MIN_OPSET = 17  # LayerNormalization is a native op from 17 on
OUTPUT_NAMES = ("matches0", "matches1", "matching_scores0", "matching_scores1")
#: specular modes the graph reproduces: "filter" drops specular keypoints altogether, which with
#: a fixed depth gives the same matches as "hard" (masked keys, masked matching).
EXPORTABLE_SPECULAR_MODES = ("hard", "filter")
_META_PREFIX = "specglue."


def input_names(with_specular: bool = False, add_scale_ori: bool = False) -> List[str]:
    """The graph's input names, in order."""
    names = ["keypoints0", "keypoints1", "descriptors0", "descriptors1", "image_size0", "image_size1"]
    if add_scale_ori:
        names += ["scales0", "oris0", "scales1", "oris1"]
    if with_specular:
        names += ["specularity0", "specularity1"]
    return names


class _ExportableLightGlue(nn.Module):
    """Fixed-depth LightGlue over flat tensors, wired from the submodules of ``model``.

    The weights are the model's own (not copied); only the control flow differs from
    :meth:`LightGlue.forward`: every layer runs, nothing is pruned, and specular keypoints are
    masked by an additive key bias instead of being dropped.
    """

    def __init__(self, model: LightGlue, with_specular: bool) -> None:
        super().__init__()
        self.model = model
        self.with_specular = with_specular
        self.add_scale_ori = bool(model.conf.add_scale_ori)
        self.filter_threshold = float(model.conf.filter_threshold)
        self.names = input_names(with_specular, self.add_scale_ori)

    def _encode(self, kpts: torch.Tensor, desc: torch.Tensor, size: torch.Tensor,
                scale_ori: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """-> descriptors [B, L, D] and rotary encoding [2, B, 1, L, Dh]."""
        geometry = normalize_keypoints(kpts, size)
        if scale_ori is not None:
            geometry = torch.cat([geometry, scale_ori], -1)
        return self.model.input_proj(desc), self.model.posenc(geometry)

    @staticmethod
    def _key_bias(specularity: torch.Tensor) -> torch.Tensor:
        """[B, L] specularity -> [B, L] log-weight: -inf on specular keypoints, else 0."""
        return torch.zeros_like(specularity).masked_fill(specularity >= SPECULAR_THRESHOLD, float("-inf"))

    def forward(self, *inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = dict(zip(self.names, inputs))
        so0 = so1 = None
        if self.add_scale_ori:
            so0 = torch.stack([x["scales0"], x["oris0"]], -1)
            so1 = torch.stack([x["scales1"], x["oris1"]], -1)
        desc0, enc0 = self._encode(x["keypoints0"], x["descriptors0"], x["image_size0"], so0)
        desc1, enc1 = self._encode(x["keypoints1"], x["descriptors1"], x["image_size1"], so1)
        w0 = w1 = mask0 = mask1 = None
        if self.with_specular:
            w0, w1 = self._key_bias(x["specularity0"]), self._key_bias(x["specularity1"])
            mask0, mask1 = w0[:, None, None, :], w1[:, None, None, :]  # key masks [B, 1, 1, L]
        for layer in self.model.transformers:
            desc0, desc1 = layer(desc0, desc1, enc0, enc1, mask0, mask1, mask1, mask0)
        scores, _ = self.model.log_assignment[-1](desc0, desc1, w0, w1)
        return filter_matches(scores, self.filter_threshold)


def _dummy_inputs(model: LightGlue, names: Sequence[str], batch: int = 1, m: int = 48,
                  n: int = 64) -> Tuple[torch.Tensor, ...]:
    """Tracing inputs; M != N so that the two keypoint axes stay distinct in the graph."""
    g = torch.Generator().manual_seed(0)
    size = torch.tensor([[640.0, 480.0]]).expand(batch, 2).contiguous()
    lengths = {"0": m, "1": n}
    out = []
    for name in names:
        length = lengths[name[-1]]
        if name.startswith("keypoints"):
            out.append(torch.rand(batch, length, 2, generator=g) * size[:, None])
        elif name.startswith("descriptors"):
            desc = torch.randn(batch, length, model.conf.input_dim, generator=g)
            out.append(torch.nn.functional.normalize(desc, dim=-1))
        elif name.startswith("image_size"):
            out.append(size.clone())
        else:  # scales, oris, specularity: [B, L] in [0, 1)
            out.append(torch.rand(batch, length, generator=g))
    return tuple(out)


def export_onnx(
    model: LightGlue,
    path: PathLike,
    *,
    with_specular: bool = False,
    opset: int = MIN_OPSET,
    dynamic_batch: bool = True,
    check: bool = True,
) -> Path:
    """Export ``model`` as a fixed-depth ONNX graph (see the module docstring for its inputs).

    The graph runs all ``n_layers`` layers on every keypoint: no early stopping and no pruning
    (an exported graph cannot branch per input). Its outputs equal those of the same model
    with ``depth_confidence=-1, width_confidence=-1``; ``filter_threshold`` is baked in.

    Args:
        model: a float32 :class:`specglue.LightGlue` with loaded weights (it is not modified).
        path: the ``.onnx`` file to write (parent folders are created).
        with_specular: add the inputs ``specularity0`` [B, M] and ``specularity1`` [B, N]
            (float in [0, 1]; >= 0.5 is specular) with "hard"-mode semantics. Needs the model's
            ``specular_mode`` to be "hard" or "filter".
        opset: ONNX opset, at least 17.
        dynamic_batch: make B dynamic too (M and N are always dynamic).
        check: run :func:`onnx.checker.check_model` on the written file.
    Returns:
        The path written. Models with ``add_scale_ori`` (SIFT, DoGHardNet) get the extra inputs
        ``scales0, oris0, scales1, oris1``.

    Uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``; the dynamo
    exporter needs ``onnxscript``). SDPA is decomposed into MatMul / Softmax, so the graph runs
    on any ONNX Runtime provider. The graph is float32 whatever ``model.conf.mp``.
    """
    if not isinstance(model, LightGlue):
        raise TypeError(f"model must be a specglue.LightGlue, got {type(model).__name__}")
    if int(opset) < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    if with_specular and model.conf.specular_mode not in EXPORTABLE_SPECULAR_MODES:
        raise ValueError(
            f"with_specular=True exports the 'hard' specular mode, but this model has "
            f"specular_mode={model.conf.specular_mode!r}; build it with specular_mode='hard' "
            f"(or 'filter', which matches the same with a fixed depth)"
        )
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise ValueError(f"export a float32 model (model.float()); its parameters are "
                         f"{sorted(map(str, dtypes))}")
    onnx = require("onnx", "onnx", "ONNX export")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _ExportableLightGlue(model, with_specular).eval()
    names = wrapper.names
    batch_axis = {0: "B"} if dynamic_batch else {}
    dynamic_axes: Dict[str, Dict[int, str]] = {}
    for name in names:
        axes = dict(batch_axis)
        if name[-1] in "01" and not name.startswith("image_size"):
            axes[1] = "M" if name.endswith("0") else "N"
        dynamic_axes[name] = axes
    for name in OUTPUT_NAMES:
        dynamic_axes[name] = {**batch_axis, 1: "M" if name.endswith("0") else "N"}

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the Python-level shape checks in the model become constants: expected when tracing
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            buffer = io.BytesIO()
            torch.onnx.export(
                wrapper, _dummy_inputs(model, names), buffer, dynamo=False,
                input_names=list(names), output_names=list(OUTPUT_NAMES),
                opset_version=int(opset), dynamic_axes=dynamic_axes, do_constant_folding=True,
            )
    finally:
        model.train(was_training)

    graph = onnx.load_from_string(buffer.getvalue())
    meta = {
        "n_layers": model.conf.n_layers,
        "input_dim": model.conf.input_dim,
        "add_scale_ori": int(bool(model.conf.add_scale_ori)),
        "with_specular": int(bool(with_specular)),
        "filter_threshold": model.conf.filter_threshold,
        "mask_margin": model.conf.mask_margin,
        "specular_threshold": SPECULAR_THRESHOLD,
        "fixed_depth": 1,
    }
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = _META_PREFIX + key, str(value)
    graph.doc_string = ("specglue LightGlue, fixed depth (all layers, no early stopping or pruning); "
                        "equals PyTorch with depth_confidence=-1, width_confidence=-1")
    if check:
        onnx.checker.check_model(graph, full_check=True)
    atomic_write(path, lambda tmp: onnx.save(graph, str(tmp)))  # never a partial model
    logger.info("Exported LightGlue (%d layers, specular inputs: %s, opset %d) to %s",
                model.conf.n_layers, with_specular, opset, path)
    return path


class OnnxMatcher:
    """Run a graph written by :func:`export_onnx` with ONNX Runtime, with the input and output
    dicts of :meth:`specglue.LightGlue.forward`.

    Args:
        path: the ``.onnx`` file.
        providers: ONNX Runtime execution providers, in order of preference.
        mask_margin: px margin when sampling ``specular_mask`` at keypoints (default: the
            exported model's ``mask_margin``).
        session_options: an ``onnxruntime.SessionOptions`` (threads, graph optimisation).

    ``__call__(data)`` takes ``{"image0": {...}, "image1": {...}}`` with, per image,
    ``keypoints`` [B, M, 2], ``descriptors`` [B, M, Din], ``image_size`` [B, 2] (W, H) or
    ``image`` [B, C, H, W], and optionally ``keypoint_mask`` [B, M] / ``lengths`` [B] (padding),
    ``scales`` / ``oris`` [B, M] (add_scale_ori models), ``keypoint_specular`` [B, M] and
    ``specular_mask`` [B, H, W] (graphs exported with ``with_specular`` only). It returns
    ``matches0`` [B, M], ``matches1`` [B, N], ``matching_scores0`` [B, M],
    ``matching_scores1`` [B, N], ``matches`` (B tensors [S, 2]), ``scores`` (B tensors [S]),
    ``stop`` (= n_layers; 0 when no pair has a matchable keypoint on both sides, as in
    PyTorch), ``stops`` [B] and, when masks were given, ``specularity0`` / ``specularity1``:
    torch tensors on the keypoints' device (``prune0`` / ``prune1`` are not returned).

    Padded batches (``keypoint_mask`` / ``lengths`` with False entries) run pair by pair on the
    real keypoints; unpadded batches run in one graph call. An empty side gives no matches
    without running the graph.
    """

    def __init__(self, path: PathLike, providers: Sequence[str] = ("CPUExecutionProvider",), *,
                 mask_margin: Optional[int] = None, session_options: Any = None) -> None:
        ort = require("onnxruntime", "onnx", "OnnxMatcher")

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        self.session = ort.InferenceSession(str(self.path), sess_options=session_options,
                                            providers=list(providers))
        meta = self.session.get_modelmeta().custom_metadata_map
        required = ("n_layers", "input_dim", "add_scale_ori", "with_specular", "mask_margin")
        missing = [k for k in required if _META_PREFIX + k not in meta]
        if missing:
            raise ValueError(f"{self.path} was not written by specglue.export.export_onnx "
                             f"(metadata {[_META_PREFIX + k for k in missing]} missing)")
        self.n_layers = int(meta[_META_PREFIX + "n_layers"])
        self.input_dim = int(meta[_META_PREFIX + "input_dim"])
        self.add_scale_ori = bool(int(meta[_META_PREFIX + "add_scale_ori"]))
        self.with_specular = bool(int(meta[_META_PREFIX + "with_specular"]))
        self.filter_threshold = float(meta.get(_META_PREFIX + "filter_threshold", "nan"))
        if mask_margin is None:
            mask_margin = int(meta[_META_PREFIX + "mask_margin"])
        self.mask_margin = int(mask_margin)
        self.input_names = [i.name for i in self.session.get_inputs()]
        expected = input_names(self.with_specular, self.add_scale_ori)
        if self.input_names != expected:
            raise ValueError(f"{self.path} has inputs {self.input_names}, expected {expected}")

    def __repr__(self) -> str:
        return (f"OnnxMatcher({str(self.path)!r}, n_layers={self.n_layers}, input_dim={self.input_dim}, "
                f"with_specular={self.with_specular}, providers={self.session.get_providers()})")

    # ------------------------------------------------------------------ inputs
    def _parse(self, data: Mapping[str, Any], key: str, n: str, sizes: Dict[str, int]) -> Dict[str, Any]:
        view = data.get(key) if isinstance(data, Mapping) else None
        if isinstance(view, Mapping) and not self.with_specular:
            for k in ("keypoint_specular", "specular_mask"):
                if view.get(k) is not None:
                    raise ValueError(f"data[{key!r}][{k!r}] was given but {self.path.name} was exported "
                                     "without specular inputs: export it with export_onnx(..., with_specular=True)")
        image = parse_image(data, key, n, sizes, input_dim=self.input_dim, add_scale_ori=self.add_scale_ori,
                            mask_margin=self.mask_margin, owner=self.path.name)
        parsed = {"keypoints": image.keypoints.float(), "descriptors": image.descriptors.float(),
                  "image_size": image.size, "valid": image.valid, "specularity": image.specularity}
        if self.add_scale_ori:
            parsed["scales"], parsed["oris"] = image.scale_ori.unbind(-1)
        return parsed

    # ------------------------------------------------------------------ running
    def _feeds(self, image0: Dict[str, Any], image1: Dict[str, Any], rows: Any = slice(None),
               cols0: Any = slice(None), cols1: Any = slice(None)) -> Dict[str, np.ndarray]:
        """The graph inputs for pairs ``rows`` and keypoints ``cols0`` / ``cols1``."""
        feeds: Dict[str, np.ndarray] = {}
        for suffix, image, cols in (("0", image0, cols0), ("1", image1, cols1)):
            values = {
                "keypoints": image["keypoints"][rows, cols],
                "descriptors": image["descriptors"][rows, cols],
                "image_size": image["image_size"][rows],
            }
            if self.add_scale_ori:
                values["scales"], values["oris"] = image["scales"][rows, cols], image["oris"][rows, cols]
            if self.with_specular:
                spec = image["specularity"]
                values["specularity"] = (torch.zeros_like(image["keypoints"][..., 0]) if spec is None
                                         else spec)[rows, cols]
            for k, v in values.items():
                feeds[k + suffix] = np.ascontiguousarray(v.detach().to("cpu", torch.float32).numpy())
        return {k: feeds[k] for k in self.input_names}

    @staticmethod
    def _matchable(image: Dict[str, Any]) -> torch.Tensor:
        """[B] bool: the pair has at least one real, non-specular keypoint on this side."""
        keep = image["valid"]
        if image["specularity"] is not None:
            keep = keep & (image["specularity"] < SPECULAR_THRESHOLD)
        return keep.any(1).cpu()

    def _run(self, feeds: Dict[str, np.ndarray]) -> List[torch.Tensor]:
        return [torch.from_numpy(np.asarray(o)) for o in self.session.run(list(OUTPUT_NAMES), feeds)]

    def __call__(self, data: Mapping[str, Any]) -> Dict[str, Any]:
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict with keys 'image0' and 'image1', got {type(data).__name__}")
        sizes: Dict[str, int] = {}
        image0 = self._parse(data, "image0", "M", sizes)
        image1 = self._parse(data, "image1", "N", sizes)
        device = image0["keypoints"].device
        (b, m), n = image0["valid"].shape, image1["valid"].shape[1]
        matches0 = torch.full((b, m), -1, dtype=torch.long)
        matches1 = torch.full((b, n), -1, dtype=torch.long)
        scores0, scores1 = torch.zeros((b, m)), torch.zeros((b, n))
        # as in PyTorch, a pair with nothing matchable on one side "stops" after 0 layers
        stops = torch.where(self._matchable(image0) & self._matchable(image1), self.n_layers, 0)
        padded = not (bool(image0["valid"].all()) and bool(image1["valid"].all()))
        if not padded and b > 0 and m > 0 and n > 0:
            matches0, matches1, scores0, scores1 = self._run(self._feeds(image0, image1))
        elif padded:  # one pair at a time, on its real keypoints only
            for k in range(b):
                idx0 = torch.where(image0["valid"][k])[0]
                idx1 = torch.where(image1["valid"][k])[0]
                if idx0.numel() == 0 or idx1.numel() == 0:
                    continue
                i0, i1 = idx0.cpu(), idx1.cpu()
                m0, m1, s0, s1 = self._run(self._feeds(image0, image1, slice(k, k + 1), idx0, idx1))
                matches0[k, i0] = torch.where(m0[0] >= 0, i1[m0[0].clamp(min=0)], -1)
                matches1[k, i1] = torch.where(m1[0] >= 0, i0[m1[0].clamp(min=0)], -1)
                scores0[k, i0], scores1[k, i1] = s0[0], s1[0]

        matches0, matches1 = matches0.to(device), matches1.to(device)
        scores0, scores1 = scores0.to(device), scores1.to(device)
        matches, scores = [], []
        for k in range(b):
            ok = matches0[k] > -1
            matches.append(torch.stack([torch.where(ok)[0], matches0[k][ok]], -1))
            scores.append(scores0[k][ok])
        result: Dict[str, Any] = {
            "matches0": matches0, "matches1": matches1,
            "matching_scores0": scores0, "matching_scores1": scores1,
            "matches": matches, "scores": scores,
            "stop": int(stops.max()) if b else 0, "stops": stops.to(device),
        }
        spec0, spec1 = image0["specularity"], image1["specularity"]
        if spec0 is not None or spec1 is not None:
            result["specularity0"] = spec0 if spec0 is not None else torch.zeros_like(scores0)
            result["specularity1"] = spec1 if spec1 is not None else torch.zeros_like(scores1)
        return result
