"""SuperPoint (DeTone et al. 2018): the MagicLeap network, weights supplied by the user.

No SuperPoint weights ship with specglue: MagicLeap's ``superpoint_v1.pth`` is licensed for
non-commercial research only. Pass its path as ``SuperPoint(weights="/path/superpoint_v1.pth")``;
the layer names (``conv1a`` ... ``conv4b``, ``convPa``, ``convPb``, ``convDa``, ``convDb``) are
those of that file and of LightGlue's ``superpoint_v1.pth``.

Detection and description follow official LightGlue: softmax over the 65 cell channels, the
dustbin dropped, the 8x8 cells unfolded to a full-resolution ``[H, W]`` map (for ``H``, ``W``
multiples of 8; otherwise the last ``H % 8`` rows and ``W % 8`` columns get no keypoint),
max-pool NMS, border removal, threshold, top-k; keypoints are integer pixels. Descriptors are
read bilinearly from the L2-normalised ``[D, H/8, W/8]`` map at the keypoints, with LightGlue's
normalisation of the coordinates, then L2-normalised again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .. import weights as _weights
from .base import KEYPOINT_FLOOR, PREPROCESSING_CONF, Extractor, max_pool_nms

logger = logging.getLogger(__name__)

CELL = 8  #: stride of the coarse maps, px


class SuperPointNet(nn.Module):
    """The MagicLeap SuperPoint network (a shared VGG-style encoder and two heads).

    ``forward`` maps a grey ``[B, 1, H, W]`` image to the detector logits
    ``[B, 65, H/8, W/8]`` and the raw descriptor map ``[B, D, H/8, W/8]``.
    """

    def __init__(self, descriptor_dim: int = 256) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = 64, 64, 128, 128, 256
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv1a = nn.Conv2d(1, c1, kernel_size=3, stride=1, padding=1)
        self.conv1b = nn.Conv2d(c1, c1, kernel_size=3, stride=1, padding=1)
        self.conv2a = nn.Conv2d(c1, c2, kernel_size=3, stride=1, padding=1)
        self.conv2b = nn.Conv2d(c2, c2, kernel_size=3, stride=1, padding=1)
        self.conv3a = nn.Conv2d(c2, c3, kernel_size=3, stride=1, padding=1)
        self.conv3b = nn.Conv2d(c3, c3, kernel_size=3, stride=1, padding=1)
        self.conv4a = nn.Conv2d(c3, c4, kernel_size=3, stride=1, padding=1)
        self.conv4b = nn.Conv2d(c4, c4, kernel_size=3, stride=1, padding=1)
        self.convPa = nn.Conv2d(c4, c5, kernel_size=3, stride=1, padding=1)
        self.convPb = nn.Conv2d(c5, CELL * CELL + 1, kernel_size=1, stride=1, padding=0)
        self.convDa = nn.Conv2d(c4, c5, kernel_size=3, stride=1, padding=1)
        self.convDb = nn.Conv2d(c5, descriptor_dim, kernel_size=1, stride=1, padding=0)

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``[B, 1, H, W]`` -> (logits ``[B, 65, H/8, W/8]``, descriptors ``[B, D, H/8, W/8]``)."""
        x = image
        for i, (a, b) in enumerate(
            [(self.conv1a, self.conv1b), (self.conv2a, self.conv2b),
             (self.conv3a, self.conv3b), (self.conv4a, self.conv4b)]
        ):
            x = self.relu(b(self.relu(a(x))))
            if i < 3:
                x = self.pool(x)
        logits = self.convPb(self.relu(self.convPa(x)))
        descriptors = self.convDb(self.relu(self.convDa(x)))
        return logits, descriptors


def sample_descriptors(
    keypoints: torch.Tensor, descriptors: torch.Tensor, cell: int = CELL
) -> torch.Tensor:
    """Descriptors at pixel keypoints, read bilinearly from a coarse map (as LightGlue).

    Args:
        keypoints: ``[N, 2]`` (x, y) in pixels of the full-resolution image.
        descriptors: ``[D, h, w]`` coarse map with stride ``cell``.

    Returns:
        ``[N, D]`` L2-normalised descriptors.
    """
    d, h, w = descriptors.shape
    centre = cell / 2 - 0.5  # pixel of the first cell's centre
    extent = keypoints.new_tensor([w * cell - centre - 1, h * cell - centre - 1])
    grid = (keypoints - centre) / extent * 2 - 1
    sampled = F.grid_sample(
        descriptors[None], grid.view(1, 1, -1, 2), mode="bilinear", align_corners=True
    )[0, :, 0]  # [D, N]
    return F.normalize(sampled.t(), p=2, dim=1)


class SuperPoint(Extractor):
    """SuperPoint detector and descriptor; needs ``weights`` (a path to the checkpoint).

    Output: see :mod:`specglue.features.base`; keypoints are integer pixels, ``descriptors``
    ``[B, N, 256]`` L2-normalised, ``keypoint_scores`` in (0, 1).
    """

    default_conf: ClassVar[Dict[str, Any]] = {
        "weights": None,  # required: path to superpoint_v1.pth (or a state dict); not bundled
        "descriptor_dim": 256,  # D, must match the weights
        "nms_radius": 4,  # max-pool NMS radius, px; 0 disables
        "max_num_keypoints": None,  # keep the strongest; None (or <= 0) = all
        "detection_threshold": 0.0005,  # keep pixels whose score is above it
        "keypoint_floor": KEYPOINT_FLOOR,  # under this share of the budget, top-k instead; 0 = official
        "remove_borders": 4,  # px at each border without keypoints; 0 disables
        **PREPROCESSING_CONF,
    }
    official_conf: ClassVar[Dict[str, Any]] = {"upsample": True, "keypoint_floor": 0.0}
    input_channels: ClassVar[int] = 1

    def __init__(self, **conf: Any) -> None:
        super().__init__(**conf)
        source: Union[None, str, Path, Dict[str, torch.Tensor]] = self.conf["weights"]
        if source is None:
            raise ValueError(
                "SuperPoint needs its weights, which specglue does not ship (MagicLeap licence, "
                "non-commercial). Pass the checkpoint path: "
                "SuperPoint(weights='/path/to/superpoint_v1.pth') or "
                "build_extractor('superpoint', weights='/path/to/superpoint_v1.pth')."
            )
        self.net = SuperPointNet(int(self.conf["descriptor_dim"]))
        state = _weights.load_state_dict(source)
        try:
            self.net.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"Checkpoint {source if not isinstance(source, dict) else '<state dict>'} does "
                f"not fit SuperPoint (expected keys conv1a.weight ... convDb.bias): {err}"
            ) from err
        self.net.eval()
        name = "<state dict>" if isinstance(source, dict) else source
        logger.info("Loaded SuperPoint weights from %s", name)

    @property
    def descriptor_dim(self) -> int:
        return int(self.conf["descriptor_dim"])

    def _extract_batch(
        self, image: torch.Tensor, region: Optional[torch.Tensor] = None
    ) -> List[Dict[str, torch.Tensor]]:
        """See :meth:`Extractor._extract_batch`; ``image`` is ``[B, 1, H, W]`` grey."""
        logits, coarse = self.net(image)
        b, _, hc, wc = logits.shape
        probs = torch.softmax(logits, dim=1)[:, :-1]  # [B, 64, h, w], dustbin dropped
        scores = probs.permute(0, 2, 3, 1).reshape(b, hc, wc, CELL, CELL)
        scores = scores.permute(0, 1, 3, 2, 4).reshape(b, hc * CELL, wc * CELL)
        if region is not None:
            scores = scores.masked_fill(~region[:, : scores.shape[1], : scores.shape[2]], 0.0)
        scores = max_pool_nms(scores, int(self.conf["nms_radius"]))
        border = int(self.conf["remove_borders"])
        if border > 0:
            scores[:, :border] = -1
            scores[:, :, :border] = -1
            scores[:, -border:] = -1
            scores[:, :, -border:] = -1
        coarse = F.normalize(coarse, p=2, dim=1)
        budget = self.conf["max_num_keypoints"]
        threshold = float(self.conf["detection_threshold"])
        out = []
        for i in range(b):
            rows, cols = torch.nonzero(scores[i] > threshold, as_tuple=True)
            if rows.numel() < self._keypoint_floor():  # low texture: the strongest maxima
                self._log_floor(rows.numel())
                rows, cols = torch.nonzero(scores[i] > 0, as_tuple=True)
            kp_scores = scores[i, rows, cols]
            if budget is not None and 0 < budget < kp_scores.numel():
                top = torch.topk(kp_scores, int(budget)).indices
                rows, cols, kp_scores = rows[top], cols[top], kp_scores[top]
            keypoints = torch.stack([cols, rows], -1).to(coarse.dtype)
            out.append({
                "keypoints": keypoints,
                "keypoint_scores": kp_scores,
                "descriptors": sample_descriptors(keypoints, coarse[i]),
            })
        return out
