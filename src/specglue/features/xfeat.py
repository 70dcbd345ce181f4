"""XFeat (Potje et al., "XFeat: Accelerated Features for Lightweight Image Matching", CVPR 2024).

A small CNN for fast sparse matching: 64-dim descriptors on a 1/8 grid, a keypoint head that
classifies each 8x8 cell into one of 64 pixels or "none", and a reliability map. This module
loads the official weights (``xfeat.pt``, Apache-2.0) unchanged and detects as the official
``XFeat.detectAndCompute``: the image is resampled to multiples of 32 px, the cell
classifications form a full-resolution heatmap, its 5x5 local maxima above
``detection_threshold`` are scored by heatmap x reliability and the strongest
``max_num_keypoints`` kept, with bicubic descriptors. The matcher made for it is LighterGlue,
``LightGlue(features="xfeat")`` (6 layers, 1 head, 96 dims).

Differences from the official code, each a setting: the specglue preprocessing
(:data:`~specglue.features.base.PREPROCESSING_CONF`: at most ``resize`` px, masks, region of
interest) and the keypoint floor. :meth:`XFeat.official` matches the official output.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import weights as _weights
from .base import KEYPOINT_FLOOR, PREPROCESSING_CONF, Extractor

#: XFeat samples its maps as the official ``InterpolateSparse2d``: positions normalised by
#: (W - 1, H - 1) of the full-resolution image, ``align_corners=False`` on the 1/8 map
GRID = 8


class ConvBlock(nn.Module):
    """Convolution, BatchNorm without affine parameters, ReLU (XFeat's ``BasicLayer``; the
    ``layer`` attribute keeps the official key layout)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out, affine=False), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class XFeatNet(nn.Module):
    """The XFeat network (the official ``XFeatModel`` without its fine-matching MLP, which
    sparse matching does not use), module names as in ``xfeat.pt``."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(1)
        self.skip1 = nn.Sequential(nn.AvgPool2d(4, stride=4), nn.Conv2d(1, 24, 1))
        self.block1 = nn.Sequential(ConvBlock(1, 4), ConvBlock(4, 8, stride=2), ConvBlock(8, 8),
                                    ConvBlock(8, 24, stride=2))
        self.block2 = nn.Sequential(ConvBlock(24, 24), ConvBlock(24, 24))
        self.block3 = nn.Sequential(ConvBlock(24, 64, stride=2), ConvBlock(64, 64), ConvBlock(64, 64, 1))
        self.block4 = nn.Sequential(ConvBlock(64, 64, stride=2), ConvBlock(64, 64), ConvBlock(64, 64))
        self.block5 = nn.Sequential(ConvBlock(64, 128, stride=2), ConvBlock(128, 128),
                                    ConvBlock(128, 128), ConvBlock(128, 64, 1))
        self.block_fusion = nn.Sequential(ConvBlock(64, 64), ConvBlock(64, 64), nn.Conv2d(64, 64, 1))
        self.heatmap_head = nn.Sequential(ConvBlock(64, 64, 1), ConvBlock(64, 64, 1), nn.Conv2d(64, 1, 1),
                                          nn.Sigmoid())
        self.keypoint_head = nn.Sequential(ConvBlock(64, 64, 1), ConvBlock(64, 64, 1), ConvBlock(64, 64, 1),
                                           nn.Conv2d(64, GRID * GRID + 1, 1))

    def forward(self, image: torch.Tensor):
        """``image`` [B, C, H, W] (H, W multiples of 32) -> dense descriptors [B, 64, H/8, W/8],
        cell logits [B, 65, H/8, W/8] and reliability [B, 1, H/8, W/8]."""
        x = self.norm(image.mean(dim=1, keepdim=True))
        x1 = self.block1(x)
        x2 = self.block2(x1 + self.skip1(x))
        x3 = self.block3(x2)
        x4 = self.block4(x3)
        x5 = self.block5(x4)
        size = x3.shape[-2:]
        fused = self.block_fusion(x3 + F.interpolate(x4, size, mode="bilinear") + F.interpolate(x5, size, mode="bilinear"))
        cells = F.pixel_unshuffle(x, GRID)  # [B, 64, H/8, W/8]: each cell's pixels as channels
        return fused, self.keypoint_head(cells), self.heatmap_head(fused)


def sample_sparse(maps: torch.Tensor, points: torch.Tensor, size: torch.Size, mode: str) -> torch.Tensor:
    """``maps`` [B, C, h, w] at pixel positions ``points`` [B, N, 2] of an image of ``size``
    (H, W), as the official ``InterpolateSparse2d`` samples them: [B, N, C]."""
    scale = points.new_tensor([size[1] - 1, size[0] - 1])
    grid = (2.0 * points / scale - 1.0)[:, :, None].to(maps.dtype)  # [B, N, 1, 2]
    return F.grid_sample(maps, grid, mode=mode, align_corners=False)[..., 0].transpose(1, 2)


class XFeat(Extractor):
    """XFeat keypoints and 64-dim descriptors (see the module docstring).

    Output: see :mod:`specglue.features.base`; ``keypoint_scores`` are heatmap x reliability.
    """

    default_conf: ClassVar[Dict[str, Any]] = {
        "weights": "xfeat",  # registry name, checkpoint path or state dict
        "max_num_keypoints": 4096,  # keep the strongest (the official top_k); None (or <= 0) = all
        "detection_threshold": 0.05,  # keep heatmap maxima above it
        "nms_window_size": 5,  # odd side of the non-maximum-suppression window, px
        "keypoint_floor": KEYPOINT_FLOOR,  # under this share of the budget, top-k instead; 0 = official
        **PREPROCESSING_CONF,
    }
    #: the official code detects at the input resolution
    official_conf: ClassVar[Dict[str, Any]] = {"resize": None, "keypoint_floor": 0.0}
    input_channels: ClassVar[int] = 3  # the network averages the channels itself

    def __init__(self, **conf: Any) -> None:
        super().__init__(**conf)
        window = self.conf["nms_window_size"]
        if not isinstance(window, int) or window < 1 or window % 2 == 0:
            raise ValueError(f"nms_window_size must be an odd int >= 1, got {window!r}")
        self.net = XFeatNet()
        source = self.conf["weights"]
        if isinstance(source, str) and source in _weights.CHECKPOINTS:
            source = _weights.resolve(source)
        state = {k: v for k, v in _weights.load_state_dict(source).items() if not k.startswith("fine_matcher.")}
        self.net.load_state_dict(state)
        self.eval()

    @property
    def descriptor_dim(self) -> int:
        return 64

    def _extract_batch(self, image: torch.Tensor, region: Optional[torch.Tensor] = None
                       ) -> List[Dict[str, torch.Tensor]]:
        """See :meth:`Extractor._extract_batch`; ``image`` is ``[B, 3, H, W]``."""
        h, w = image.shape[-2:]
        size = ((h // 32) * 32, (w // 32) * 32)  # as the official code: resampled, not padded
        x = F.interpolate(image, size, mode="bilinear", align_corners=False)
        dense, logits, reliability = self.net(x)
        dense = F.normalize(dense, dim=1)
        heatmap = F.pixel_shuffle(logits.softmax(1)[:, :GRID * GRID], GRID)  # [B, 1, H', W']
        if region is not None:
            inside = F.interpolate(region[:, None].float(), size, mode="nearest") > 0.5
            heatmap = heatmap * inside
        window = self.conf["nms_window_size"]
        maxima = (heatmap == F.max_pool2d(heatmap, window, stride=1, padding=window // 2))[:, 0]  # [B, H', W']
        budget = self.conf["max_num_keypoints"]
        budget = int(budget) if budget is not None and budget > 0 else None
        to_image = heatmap.new_tensor([w / size[1], h / size[0]])
        out = []
        for i in range(len(x)):
            found = maxima[i] & (heatmap[i, 0] > self.conf["detection_threshold"])
            if int(found.sum()) < self._keypoint_floor():  # low texture: the strongest maxima
                self._log_floor(int(found.sum()))
                found = maxima[i] & (heatmap[i, 0] > 0)
            points = found.nonzero().flip(-1)[None].float()  # [1, K, 2] (x, y), row-major order
            scores = (sample_sparse(heatmap[i : i + 1], points, size, "nearest")
                      * sample_sparse(reliability[i : i + 1], points, size, "bilinear"))[0, :, 0]  # [K]
            scores[(points[0] == 0).all(-1)] = -1.0  # the official code drops (0, 0), its padding value
            order = torch.argsort(-scores)[:budget]
            points, scores = points[:, order], scores[order]
            descriptors = F.normalize(sample_sparse(dense[i : i + 1], points, size, "bicubic")[0], dim=-1)
            keep = scores > 0
            out.append({"keypoints": (points[0] * to_image)[keep], "keypoint_scores": scores[keep],
                        "descriptors": descriptors[keep]})
        return out


__all__ = ["XFeat", "XFeatNet"]
