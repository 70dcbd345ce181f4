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

import functools
import logging
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Tuple, Union

import torch
import torch.nn.functional as F
from kornia.feature.aliked import ALIKED as KorniaALIKED

from .. import weights as _weights
from ..model import kernels
from .base import Extractor, max_pool_nms

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
        "keypoint_floor": 0.25,  # under this share of the budget, top-k instead; 0 = official
        "nms_radius": 2,  # suppression window is 2r+1 px; also the border left out
        "resize": 1024,  # largest long side in px before detection; None = no resize
        "upsample": False,  # also enlarge images smaller than resize (official: True)
        "mask_margin": 0,  # px dilation of a specular mask passed to extract()
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
        self.net.eval()
        self._net_layout = torch.contiguous_format
        logger.info("Loaded ALIKED %s from %s", name, source)

    @property
    def descriptor_dim(self) -> int:
        return ALIKED_VARIANTS[self.conf["model_name"]]

    def _select(self, scores: torch.Tensor) -> List[torch.Tensor]:
        """Indices into the flattened ``[H*W]`` map of each image's keypoints.

        Args:
            scores: ``[B, H, W]`` score maps in (0, 1).
        """
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

    def _dense_maps(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The network's feature map [B, D, H, W] and score map [B, 1, H, W].

        On the CPU the network runs in the memory layout measured fastest for this image size
        (:func:`specglue.model.kernels.measured`; pinned: ``onednn`` -> channels-last, its
        native layout, ``pytorch`` -> contiguous). Channels-last makes the dense L2 norm, the
        concatenation and the descriptor sampling, all over channels, contiguous reads (30 %
        faster at 320x240 on an AMD EPYC). Both give the same maps up to summation order.
        """
        if image.device.type != "cpu" or torch.compiler.is_compiling() or torch.jit.is_tracing():
            return self.net.extract_dense_map(image)
        b, _, h, w = image.shape
        key = (f"aliked dense {self.conf['model_name']} {str(image.dtype).replace('torch.', '')} "
               f"B{b} pixels{kernels.size_bucket(h * w)}")
        paths = {layout: functools.partial(self._dense_maps_in, image, layout)
                 for layout in (torch.channels_last, torch.contiguous_format)}
        paths = {"channels_last": paths[torch.channels_last], "contiguous": paths[torch.contiguous_format]}
        return kernels.measured(key, paths, {"onednn": "channels_last", "pytorch": "contiguous"}, repeats=3)

    def _dense_maps_in(self, image: torch.Tensor, layout: torch.memory_format) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`KorniaALIKED.extract_dense_map` with the image and the weights in ``layout``
        (a convolution's output takes the layout of its weights)."""
        if self._net_layout != layout:
            self.net.to(memory_format=layout)
            self._net_layout = layout
        return self.net.extract_dense_map(image.contiguous(memory_format=layout))

    def _extract_batch(self, image: torch.Tensor) -> List[Dict[str, torch.Tensor]]:
        """See :meth:`Extractor._extract_batch`; ``image`` is ``[B, 3, H, W]`` RGB."""
        feature_map, score_map = self._dense_maps(image)
        _, _, h, w = image.shape
        wh = torch.tensor([w - 1, h - 1], dtype=score_map.dtype, device=score_map.device)
        keypoints_px = [
            self._refine(score_map[i, 0], idx)
            for i, idx in enumerate(self._select(score_map[:, 0]))
        ]
        normalised = [kp / wh * 2 - 1 for kp in keypoints_px]  # [-1, 1], align_corners=True
        descriptors, _ = self.net.desc_head(feature_map, normalised)
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
