"""ALIKED keypoints and descriptors on kornia's network, with LightGlue's detection rules.

The backbone, score head and deformable descriptor head (SDDH) are kornia's
(:class:`kornia.feature.aliked.ALIKED`, which carries its own ``deform_conv2d``, so torchvision
is not needed). Keypoint selection follows the official ALIKED / LightGlue ``DKD`` instead of
kornia's: kornia keeps strict local maxima only, while the official detector (whose keypoints
the ``aliked_lightglue`` matcher weights were trained on) also keeps tied maxima and the
positions that become maxima in two extra suppression rounds (:func:`max_pool_nms`). With the
default settings the keypoints therefore equal the official ones.
"""

from __future__ import annotations

import copy
import functools
import logging
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from kornia.feature.aliked import ALIKED as KorniaALIKED
from kornia.feature.aliked.aliked import DeformableConv2d, InputPadder

from .. import weights as _weights
from ..ops import choice, kernels
from .base import KEYPOINT_FLOOR, PREPROCESSING_CONF, Extractor, max_pool_nms

logger = logging.getLogger(__name__)

#: the pretrained variants and their descriptor width
ALIKED_VARIANTS: Dict[str, int] = {
    "aliked-t16": 64,
    "aliked-n16": 128,
    "aliked-n16rot": 128,
    "aliked-n32": 128,
}


class ALIKED(Extractor):
    """ALIKED detector and descriptor (Zhao et al. 2023) with LightGlue's detection rules.

    Two defaults differ from the official extractor (see :mod:`specglue.features.base`):
    images are never enlarged to ``resize`` (``upsample=False``), and when the detection
    threshold keeps fewer than ``keypoint_floor`` of ``max_num_keypoints`` keypoints (smooth,
    blurry endoscopy frames), the ``max_num_keypoints`` strongest maxima are taken instead.
    ``ALIKED.official(...)`` restores the official behaviour exactly.

    Output: see :mod:`specglue.features.base`; ``descriptors`` are ``[B, N, 128]``
    (``[B, N, 64]`` for ``aliked-t16``) and L2-normalised; keypoints are sub-pixel.
    """

    default_conf: ClassVar[Dict[str, Any]] = {
        "model_name": "aliked-n16",  # one of ALIKED_VARIANTS
        "weights": None,  # checkpoint file; None = the pretrained file of model_name
        "max_num_keypoints": -1,  # keypoint budget; -1 (or any value <= 0) = at most 20000
        "detection_threshold": 0.2,  # keep maxima scoring above it; <= 0 = top-k mode
        "keypoint_floor": KEYPOINT_FLOOR,  # under this share of the budget, top-k instead; 0 = official
        "nms_radius": 2,  # suppression window is 2r+1 px; also the border left out
        **PREPROCESSING_CONF,
    }
    official_conf: ClassVar[Dict[str, Any]] = {"upsample": True, "keypoint_floor": 0.0}
    input_channels: ClassVar[int] = 3
    #: the most keypoints returned in threshold mode without a budget (as official)
    n_limit_max: ClassVar[int] = 20000
    #: soft-argmax temperature of the sub-pixel refinement (as official)
    temperature: ClassVar[float] = 0.1

    def __init__(self, **conf: Any) -> None:
        super().__init__(**conf)
        name = self.conf["model_name"]
        if name not in ALIKED_VARIANTS:
            raise ValueError(
                f"Unknown ALIKED model_name {name!r}; known: {sorted(ALIKED_VARIANTS)}"
            )
        if int(self.conf["nms_radius"]) < 1:
            raise ValueError(f"nms_radius must be >= 1, got {self.conf['nms_radius']!r}")
        self.net = KorniaALIKED(model_name=name, nms_radius=int(self.conf["nms_radius"]))
        source: Union[str, Path] = self.conf["weights"] or _weights.resolve(name)
        state = _weights.load_state_dict(source)
        result = self.net.load_state_dict(state, strict=False)
        # kornia registers the detector's sampling grid as a buffer; the checkpoint lacks it
        missing = [k for k in result.missing_keys if not k.startswith("dkd.")]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"Checkpoint {source} does not fit ALIKED {name!r}: missing {missing}, "
                f"unexpected {result.unexpected_keys}"
            )
        for module in self.net.modules():
            if type(module) is DeformableConv2d:
                module.__class__ = RowDeformableConv2d  # same parameters, faster forward
        self.net.eval()
        self._dense_maps = _dense_maps  # torch.compile'd by compile()
        logger.info("Loaded ALIKED %s from %s", name, source)

    @property
    def descriptor_dim(self) -> int:
        return ALIKED_VARIANTS[self.conf["model_name"]]

    def _select(self, scores: torch.Tensor, region: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
        """Indices into the flattened ``[H*W]`` map of each image's keypoints.

        Args:
            scores: ``[B, H, W]`` score maps in (0, 1).
            region: ``[B, H, W]`` bool where keypoints may be detected, or None.
        """
        if region is not None:
            scores = scores.masked_fill(~region, 0.0)
        b, h, w = scores.shape
        r = int(self.conf["nms_radius"])
        budget = self.conf["max_num_keypoints"]
        budget = int(budget) if budget is not None and budget > 0 else -1
        threshold = float(self.conf["detection_threshold"])
        nms = max_pool_nms(scores, r)
        border = torch.zeros_like(nms, dtype=torch.bool)
        border[:, :r] = border[:, h - r:] = True
        border[:, :, :r] = border[:, :, w - r:] = True
        nms = nms.masked_fill(border, 0.0)

        def strongest(flat: torch.Tensor) -> torch.Tensor:
            """Top-k mode: the ``budget`` strongest maxima of a ``[H*W]`` suppressed map."""
            candidates = flat.nonzero()[:, 0]
            return candidates[flat[candidates].argsort(descending=True, stable=True)[:budget]]

        selected = []
        for flat, flat_scores in zip(nms.reshape(b, -1), scores.reshape(b, -1)):
            if threshold <= 0 and budget > 0:  # top-k mode, among the maxima only
                selected.append(strongest(flat))
                continue
            if threshold > 0:
                keep = flat > threshold
            else:
                keep = torch.zeros_like(flat, dtype=torch.bool)
            if not bool(keep.any()):  # no maximum above the threshold: above the mean
                keep = flat > flat_scores.mean()
            indices = keep.nonzero()[:, 0]
            limit = budget if budget > 0 else self.n_limit_max
            if indices.numel() > limit:
                order = flat_scores[indices].sort(descending=True)[1][:limit]
                indices = indices[order]
            if indices.numel() < self._keypoint_floor():  # low texture: the strongest maxima
                self._log_floor(indices.numel())
                indices = strongest(flat)
            selected.append(indices)
        return selected

    def _describe(self, feature_map: "_FeatureMap", keypoints: torch.Tensor) -> torch.Tensor:
        """Descriptors [N, D] at ``keypoints`` [N, 2] (normalised to [-1, 1]): kornia's SDDH
        (deformable sampling head) reading ``feature_map`` only where it samples.

        Per keypoint: the 3x3 patch of the feature map around it gives ``n_pos`` offsets; the
        map is sampled bilinearly there (``grid_sample``: align_corners, zeros outside), then a
        1x1 convolution, SELU, the learned aggregation over positions and an L2 norm. The
        convolutions on per-keypoint patches are linear layers on rows (``[N, 3 * 3 * D]`` and
        ``[N * P, D]``; the same products as kornia's, without its layout copies).
        """
        head = self.net.desc_head
        if head.kernel_size < 2 or head.mask or head.conv2d:
            raise NotImplementedError("only ALIKED's SDDH configuration (3x3 patches, no mask, "
                                      "aggregation weights) is supported")
        h, w = feature_map.size
        n, ps, dim = keypoints.shape[0], head.kernel_size, self.descriptor_dim
        if n == 0:
            return keypoints.new_zeros((0, dim))
        wh = torch.tensor([[w - 1, h - 1]], device=keypoints.device,
                          dtype=torch.promote_types(keypoints.dtype, torch.float32))
        keypoints_wh = (keypoints / 2 + 0.5) * wh  # [N, 2] pixels
        # the patch as kornia's get_patches: its corner moved inside the map
        corner = (keypoints_wh.long() - ps / 2 + 1).long()
        cx = corner[:, 0].clamp(min=0, max=w - 1 - ps)
        cy = corner[:, 1].clamp(min=0, max=h - 1 - ps)
        steps = torch.arange(ps, device=keypoints.device)
        ys = (cy[:, None, None] + steps[None, :, None]).expand(n, ps, ps)  # [N, dy, dx]
        xs = (cx[:, None, None] + steps[None, None, :]).expand(n, ps, ps)
        patch = feature_map.at(ys.reshape(-1), xs.reshape(-1)).view(n, ps * ps * dim)  # [N, dy * dx * D]
        patch_conv, gate, point_conv = head.offset_conv  # 3x3 conv, gate, 1x1 conv
        patch_layer = self._head_layer("_patch_rows", (patch_conv.weight, patch_conv.bias), lambda: (
            patch_conv.weight.permute(0, 2, 3, 1).reshape(-1, ps * ps * dim), patch_conv.bias))  # [2P, dy*dx*D]
        point_layer = self._head_layer("_point_rows", (point_conv.weight, point_conv.bias), lambda: (
            point_conv.weight.flatten(1), point_conv.bias))
        sample_layer = self._head_layer("_sample_rows", (head.sf_conv.weight, head.sf_conv.bias), lambda: (
            head.sf_conv.weight.view(dim, dim), head.sf_conv.bias))
        aggregation = self._head_layer("_aggregation_rows", (head.agg_weights,), lambda: (
            head.agg_weights.reshape(-1, dim).t().contiguous(), None))  # [D, P * D]
        offset = point_layer(gate(patch_layer(patch)))  # [N, 2P]
        offset = offset.clamp(-max(h, w) / 4.0, max(h, w) / 4.0)
        offset = offset.view(n, 2, head.n_pos).permute(0, 2, 1)  # [N, P, 2]
        grid = 2.0 * (keypoints_wh.unsqueeze(1) + offset) / wh[None] - 1  # [N, P, 2] in [-1, 1]
        sampled = feature_map.bilinear(grid)  # [N, P, D]
        features = torch.selu_(sample_layer(sampled))  # [N, P, D]
        return F.normalize(aggregation(features.reshape(n, -1)), p=2.0, dim=1)  # [N, D]

    def _head_layer(self, name: str, sources: Tuple[Optional[torch.Tensor], ...],
                    make: Callable[[], Tuple[torch.Tensor, Optional[torch.Tensor]]]
                    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """A linear layer of the descriptor head whose weight and bias, ``make()``, are a
        reshaped convolution: outside autograd kept between calls with their bf16 copies
        (:func:`specglue.ops.kernels.derived_linear`); made per call under autograd (so that
        gradients reach the convolution) and where the weights are inference tensors; run by
        :func:`_linear`."""
        if kernels.inference(*sources):
            layer = kernels.derived_linear(self, name, sources, make)
            if layer is not None:
                return layer
        weight, bias = make()
        return lambda x: _linear(x, weight, bias)

    def _refine(self, score_map: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Sub-pixel ``[N, 2]`` (x, y) by a soft-argmax over each ``(2r+1)^2`` window.

        Args:
            score_map: ``[H, W]`` scores of one image.
            indices: ``[N]`` flat indices of its keypoints.
        """
        h, w = score_map.shape
        r = int(self.conf["nms_radius"])
        offsets = torch.arange(-r, r + 1, device=score_map.device)
        dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")  # row-major window
        y = torch.div(indices, w, rounding_mode="floor")
        x = indices % w
        padded = F.pad(score_map, (r, r, r, r))  # zeros outside the image
        window = padded[(y[:, None] + r + dy.reshape(1, -1)), (x[:, None] + r + dx.reshape(1, -1))]
        weights = torch.softmax(window / self.temperature, dim=1)  # [N, (2r+1)^2]
        grid = torch.stack([dx.reshape(-1), dy.reshape(-1)], -1).to(score_map.dtype)
        residual = weights @ grid
        return torch.stack([x, y], -1).to(score_map.dtype) + residual

    def compile(self, mode: Optional[str] = None) -> "ALIKED":
        """Compile the dense network (backbone, gated parts, score head) with
        :func:`torch.compile` (in place; returns self); keypoint selection and the sparse
        descriptor head stay eager (their sizes change with every image).

        One graph per image size and dtype (``dynamic=False``), made on the first call of each:
        about 30 s on 2 CPU cores, then ~1.6x faster than eager in bf16 on an AMX Xeon (inductor
        fuses batch norm, SELU and the upsampling into few kernels; ``benchmarks/video.py
        --compile``). On the CPU the compiled network runs channels-last (oneDNN's layout), not
        the layout measured for eager. Features differ from eager ones by rounding (fp32:
        ~1e-6, which can swap near-tied keypoints; bf16: bf16 rounding).
        """
        self._dense_maps = torch.compile(_dense_maps, mode=mode, dynamic=False)
        return self

    def _network(self, image: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor, Tuple[int, int]]:
        """The backbone's four gated feature maps, the score map [B, 1, H, W] and the padding.

        On the CPU the network runs in the memory layout measured fastest for this image size
        (:func:`specglue.ops.choice.measured`; pinned: ``onednn`` -> channels-last, its
        native layout, ``pytorch`` -> contiguous; compiled: channels-last): channels-last also
        makes the reads of the sparse feature map (:class:`_FeatureMap`) contiguous. Under CPU
        bf16 autocast outside autograd, a bf16 copy of the network runs on the bf16 image
        (autocast would cast every weight again on every call); the score map comes back in
        fp32, the parts stay bf16.
        """
        if image.device.type != "cpu" or torch.compiler.is_compiling() or torch.jit.is_tracing():
            return self._network_in(image, None, self.net)
        bf16_net = self._bf16_network() if kernels.cpu_bf16_inference(image, next(self.net.parameters())) else None
        net, image = (self.net, image) if bf16_net is None else (bf16_net, image.to(torch.bfloat16))
        if self._dense_maps is _dense_maps:
            b, _, h, w = image.shape
            key = (f"aliked network {self.conf['model_name']} {str(image.dtype).replace('torch.', '')} "
                   f"B{b} pixels{choice.size_bucket(h * w)}")
            paths = {"channels_last": functools.partial(self._network_in, image, torch.channels_last, net),
                     "contiguous": functools.partial(self._network_in, image, torch.contiguous_format, net)}
            parts, score_map, offset = choice.measured(
                key, paths, {"onednn": "channels_last", "pytorch": "contiguous"}, repeats=3)
        else:
            parts, score_map, offset = self._network_in(image, torch.channels_last, net)
        if bf16_net is not None:  # the parts stay bf16: _FeatureMap reads few of their pixels
            score_map = score_map.float()
        return parts, score_map, offset

    def _bf16_network(self) -> Optional[nn.Module]:
        """A bf16 copy of :attr:`net`, made again when a parameter or buffer of it changes; None
        where the weights were created under ``torch.inference_mode`` (no version counter: the
        network then runs under autocast as it is)."""
        version = kernels.versions([*self.net.parameters(), *self.net.buffers()])
        if version is None:
            return None
        cached = self.__dict__.get("_bf16_net")  # a plain attribute: not a submodule, not saved
        if cached is None or cached[0] != version:
            with torch.no_grad():
                cached = (version, copy.deepcopy(self.net).to(torch.bfloat16))
            self.__dict__["_bf16_net"] = cached
        return cached[1]

    def _network_in(self, image: torch.Tensor, layout: Optional[torch.memory_format], net: nn.Module
                    ) -> Tuple[List[torch.Tensor], torch.Tensor, Tuple[int, int]]:
        """:meth:`_network` with the image and the weights of ``net`` in ``layout`` (None: as
        they are; a convolution's output takes the layout of its weights), in ``net``'s dtype."""
        if layout is not None:
            if getattr(net, "specglue_layout", torch.contiguous_format) != layout:
                net.to(memory_format=layout)
                net.specglue_layout = layout
            image = image.contiguous(memory_format=layout)
        padder = InputPadder(image.shape[-2], image.shape[-1], 32)
        parts, score_map = self._dense_maps(net, padder.pad(image))
        left, top = padder._pad[0], padder._pad[2]
        return parts, padder.unpad(score_map), (left, top)

    def _extract_batch(
        self, image: torch.Tensor, region: Optional[torch.Tensor] = None
    ) -> List[Dict[str, torch.Tensor]]:
        """See :meth:`Extractor._extract_batch`; ``image`` is ``[B, 3, H, W]`` RGB."""
        parts, score_map, offset = self._network(image)
        _, _, h, w = image.shape
        wh = torch.tensor([w - 1, h - 1], dtype=score_map.dtype, device=score_map.device)
        keypoints_px = [
            self._refine(score_map[i, 0], idx)
            for i, idx in enumerate(self._select(score_map[:, 0], region))
        ]
        normalised = [kp / wh * 2 - 1 for kp in keypoints_px]  # [-1, 1], align_corners=True
        descriptors = [self._describe(_FeatureMap([p[i] for p in parts], offset, (h, w)), kn)
                       for i, kn in enumerate(normalised)]
        out = []
        for i, (kp, kn, desc) in enumerate(zip(keypoints_px, normalised, descriptors)):
            scores = F.grid_sample(
                score_map[i : i + 1], kn.view(1, 1, -1, 2), mode="bilinear", align_corners=True
            )[0, 0, 0]
            out.append({
                "keypoints": kp,
                "keypoint_scores": scores,
                "descriptors": desc.reshape(-1, self.descriptor_dim),
            })
        return out


def _dense_maps(net: nn.Module, image: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
    """The four gated feature maps and the score map [B, 1, H, W] of ALIKED's ``net`` for a
    padded ``image`` (sides multiples of 32), in ``net``'s dtype (the score map's upsampling in
    fp32: bf16 upsampling is slower).

    The same computation as kornia's ``extract_dense_map`` up to summation order, without its
    dense ``[B, D, H, W]`` feature map: the score head's first layer (a 1x1 convolution,
    linear) is applied to each part before the bilinear upsampling instead of after it.
    """
    x1 = net.block1(image)
    x2 = net.block2(net.pool2(x1))
    x3 = net.block3(net.pool4(x2))
    x4 = net.block4(net.pool4(x3))
    parts = [net.gate(net.conv1(x1)), net.gate(net.conv2(x2)), net.gate(net.conv3(x3)), net.gate(net.conv4(x4))]
    first = net.score_head[0]  # Conv2d(D, 8, 1, bias=False)
    weights = first.weight.split([p.shape[1] for p in parts], dim=1)
    size = parts[0].shape[-2:]
    logits = F.conv2d(parts[0], weights[0]).float()
    for part, weight in zip(parts[1:], weights[1:]):
        logits = logits + F.interpolate(F.conv2d(part, weight).float(), size=size, mode="bilinear",
                                        align_corners=True)
    return parts, torch.sigmoid(net.score_head[1:](logits.to(first.weight.dtype)))


class _FeatureMap:
    """ALIKED's L2-normalised dense feature map [D, H, W] of one image, computed only where read.

    The map is ``normalize(cat(x1, up2(x2), up8(x3), up32(x4)))`` over channels, at the padded
    size, cropped by the padding (kornia's ``extract_dense_map``; ``up`` = bilinear,
    align_corners). The descriptor head reads it at about 73 pixels per keypoint (a 3x3 patch
    and the 4 neighbours of 16 samples), so those pixels are computed from the four parts
    directly: at 320x240 and 512 keypoints fewer than half of the pixels, at 640x480 an
    eighth, and the 128-channel map (40 MB at 320x240) is never allocated. Values are fp32
    whatever the parts' dtype (bf16 parts are converted where read).

    Args:
        parts: the four gated maps of one image, ``[C_i, H / s_i, W / s_i]`` at the padded size.
        offset: (left, top) padding in pixels.
        size: (H, W) of the cropped map.
    """

    def __init__(self, parts: List[torch.Tensor], offset: Tuple[int, int], size: Tuple[int, int]) -> None:
        # [h * w, C] row tables (views of channels-last maps; one copy of contiguous ones); the
        # full-resolution one stays in its dtype, the coarser ones are small: fp32 once
        tables = [p.permute(1, 2, 0).reshape(-1, p.shape[0]) for p in parts]
        self.tables = tables[:1] + [t.float() for t in tables[1:]]
        self.shapes = [tuple(p.shape[-2:]) for p in parts]
        self.left, self.top = offset
        self.size = size

    def _parts_at(self, y: torch.Tensor, x: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """The unnormalised parts [K, C_i] at integer pixels ``y``, ``x`` [K] of the cropped map
        and the inverse L2 norm [K] of their concatenation."""
        yp, xp = y + self.top, x + self.left
        padded = self.shapes[0]
        parts = [self.tables[0].index_select(0, yp * padded[1] + xp).float()]
        parts += [_upsampled_at(table, shape, yp, xp, padded) for table, shape in zip(self.tables[1:], self.shapes[1:])]
        squared = sum(torch.linalg.vector_norm(part, dim=-1) ** 2 for part in parts)
        return parts, squared.sqrt().clamp_min(1e-12).reciprocal()  # F.normalize's rule

    def at(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The normalised features [K, D] at integer pixels ``y``, ``x`` [K] of the cropped map."""
        parts, inverse_norm = self._parts_at(y, x)
        return torch.cat(parts, -1).mul_(inverse_norm[:, None])

    def bilinear(self, grid: torch.Tensor) -> torch.Tensor:
        """``grid_sample(map, grid, "bilinear", align_corners=True)`` (zeros outside the map) at
        ``grid`` [..., 2] (x, y in [-1, 1]) -> [..., D]."""
        h, w = self.size
        ix = (grid[..., 0] + 1) * ((w - 1) / 2)
        iy = (grid[..., 1] + 1) * ((h - 1) / 2)
        x0, y0 = ix.floor(), iy.floor()
        fx, fy = ix - x0, iy - y0
        x0, y0 = x0.long(), y0.long()
        xs = torch.stack([x0, x0 + 1, x0, x0 + 1], -1)  # [..., 4] neighbours
        ys = torch.stack([y0, y0, y0 + 1, y0 + 1], -1)
        weights = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1)
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        flat = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).reshape(-1)
        pixels, inverse = torch.unique(flat, return_inverse=True)  # each pixel computed once
        parts, inverse_norm = self._parts_at(torch.div(pixels, w, rounding_mode="floor"), pixels % w)
        weights = (weights * inside).reshape(-1, 4) * inverse_norm[inverse].view(-1, 4)  # normalised rows
        index = inverse.view(-1, 4)
        mixed = torch.cat([_weighted_rows(part, index, weights) for part in parts], -1)  # [M, D]
        return mixed.view(*grid.shape[:-1], -1)


def _upsampled_at(table: torch.Tensor, shape: Tuple[int, int], y: torch.Tensor, x: torch.Tensor,
                  size: Tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(map, size, "bilinear", align_corners=True)`` read at integer pixels ``y``,
    ``x`` [K] of the output, for the map of ``shape`` (h, w) given as its [h * w, C] rows
    ``table`` -> [K, C] (the weights of PyTorch's kernel: source = scale * destination,
    scale = (in - 1) / (out - 1))."""
    h, w = shape
    out_h, out_w = size
    scale_y = torch.tensor(h - 1, dtype=torch.float32) / (out_h - 1) if out_h > 1 else torch.tensor(0.0)
    scale_x = torch.tensor(w - 1, dtype=torch.float32) / (out_w - 1) if out_w > 1 else torch.tensor(0.0)
    sy, sx = scale_y * y.to(torch.float32), scale_x * x.to(torch.float32)
    y0, x0 = sy.long(), sx.long()
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
    ly, lx = (sy - y0).clamp(0, 1), (sx - x0).clamp(0, 1)
    index = torch.stack([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1], -1)  # [K, 4]
    weight = torch.stack([(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx], -1)
    return _weighted_rows(table, index, weight)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``F.linear`` through :func:`specglue.ops.kernels.linear`: the CPU kernel chosen by
    measurement, and under CPU bf16 autocast rows padded to a multiple of 64 (oneDNN compiles a
    kernel per new bf16 shape, and the keypoint count changes with every image)."""
    return kernels.linear(x, weight, bias, lambda: kernels.bf16_copies(weight, bias))


def _weighted_rows(table: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum_j weight[k, j] * table[index[k, j]]`` -> [K, C] without materialising the
    [K, J, C] gathered rows (``embedding_bag``, fp32)."""
    out = F.embedding_bag(index, table.float(), per_sample_weights=weight.float(), mode="sum")
    return out.to(table.dtype)


class RowDeformableConv2d(DeformableConv2d):
    """kornia's ``DeformableConv2d`` (the deformable convolutions of ALIKED's blocks 3 and 4: 3x3,
    stride 1, no modulation mask) computed as one bilinear gather and one product.

    kornia's ``deform_conv2d`` gathers each corner of each kernel tap for every channel of a
    channels-first map and multiplies full ``[B, C, K, H, W]`` tensors: about 60 operations and
    15 ms per frame at 320x240 (a quarter of the extraction) for 0.1 GFLOP of products. Here
    the map's pixels are rows of a ``[B * H * W, C]`` table (a view of a channels-last map),
    each output pixel's ``K`` taps are weighted sums of 4 rows (``embedding_bag``), and the
    ``[B * H * W, K * C]`` columns meet the kernel in one ``F.linear``. The sampling positions
    are computed in fp32 whatever the map's dtype (kornia's are in the map's dtype: bf16 puts
    positions 64 px from the border 0.25 px apart). Same module, same parameters and state-dict
    keys; same output as kornia's up to summation order (``torchvision.ops.deform_conv2d``'s
    bilinear rule: each corner outside the map contributes zero).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] -> [B, C_out, H, W] (channels-last strides)."""
        conv = self.regular_conv
        if self.mask or self.stride != 1 or self.dilation != 1 or conv.groups != 1:
            return super().forward(x)
        b, c, h, w = x.shape
        c_out, _, kh, kw = conv.weight.shape
        max_offset = max(h, w) / 4.0
        offset = self.offset_conv(x).clamp(-max_offset, max_offset)  # [B, 2K, Ho, Wo]: (dy, dx) per tap
        ho, wo = offset.shape[-2:]
        offset = offset.float().view(b, kh * kw, 2, ho, wo).permute(0, 3, 4, 1, 2)  # [B, Ho, Wo, K, 2]
        device = x.device
        tap_y = torch.arange(kh, device=device).repeat_interleave(kw)  # [K], row-major taps
        tap_x = torch.arange(kw, device=device).repeat(kh)
        ys = (torch.arange(ho, device=device) - self.padding)[:, None, None] + tap_y + offset[..., 0]
        xs = (torch.arange(wo, device=device) - self.padding)[None, :, None] + tap_x + offset[..., 1]
        y0, x0 = ys.floor(), xs.floor()  # [B, Ho, Wo, K]
        fy, fx = ys - y0, xs - x0
        y0, x0 = y0.long(), x0.long()
        corner_y = torch.stack([y0, y0, y0 + 1, y0 + 1], -1)  # [B, Ho, Wo, K, 4]
        corner_x = torch.stack([x0, x0 + 1, x0, x0 + 1], -1)
        weight = torch.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], -1)
        weight = weight * ((corner_y >= 0) & (corner_y < h) & (corner_x >= 0) & (corner_x < w))
        image = torch.arange(b, device=device).view(b, 1, 1, 1, 1)
        index = (image * h + corner_y.clamp(0, h - 1)) * w + corner_x.clamp(0, w - 1)
        table = x.permute(0, 2, 3, 1).reshape(b * h * w, c)  # [B * H * W, C]
        taps = F.embedding_bag(index.view(-1, 4), table, per_sample_weights=weight.view(-1, 4).to(table.dtype),
                               mode="sum")  # [B * Ho * Wo * K, C]
        kernel = conv.weight.permute(0, 2, 3, 1).reshape(c_out, kh * kw * c)  # [C_out, K * C], tap-major
        out = _linear(taps.view(b * ho * wo, kh * kw * c), kernel, conv.bias)  # [B * Ho * Wo, C_out]
        return out.view(b, ho, wo, c_out).permute(0, 3, 1, 2)
