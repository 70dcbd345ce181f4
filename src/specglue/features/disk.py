"""DISK keypoints and descriptors (Tyszkiewicz et al. 2020) on kornia's implementation.

The network and its detection (strict heatmap maxima in a ``nms_window_size`` window) are
:class:`kornia.feature.DISK`, which the official LightGlue ``DISK`` extractor also wraps. With
``DISK.official(...)`` the keypoints equal those the ``disk_lightglue`` matcher weights were
trained on; the defaults differ in two ways (see :mod:`specglue.features.base`): images are
never enlarged (``upsample=False``) and a keypoint floor switches low-texture images to top-k.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from kornia.feature import DISK as KorniaDISK
from kornia.feature.disk.detector import heatmap_to_keypoints

from .. import weights as _weights
from .base import KEYPOINT_FLOOR, PREPROCESSING_CONF, Extractor

logger = logging.getLogger(__name__)


class DISK(Extractor):
    """DISK detector and descriptor with the ``depth`` weights.

    Output: see :mod:`specglue.features.base`; keypoints are integer pixels, ``descriptors``
    ``[B, N, 128]`` L2-normalised, ``keypoint_scores`` the heatmap logits.
    """

    default_conf: ClassVar[Dict[str, Any]] = {
        "weights": "disk-depth-save",  # checkpoint name in specglue.weights, or a file path
        "max_num_keypoints": None,  # keep the n strongest maxima; None (or <= 0) = all
        "detection_threshold": 0.0,  # keep maxima whose heatmap logit is above it
        "keypoint_floor": KEYPOINT_FLOOR,  # under this share of the budget, top-k instead; 0 = official
        "nms_window_size": 5,  # odd side of the non-maximum-suppression window, px
        "pad_if_not_divisible": True,  # zero-pad H, W to multiples of 16 (else they must be)
        **PREPROCESSING_CONF,
    }
    official_conf: ClassVar[Dict[str, Any]] = {"upsample": True, "keypoint_floor": 0.0}
    input_channels: ClassVar[int] = 3

    def __init__(self, **conf: Any) -> None:
        super().__init__(**conf)
        window = self.conf["nms_window_size"]
        if not isinstance(window, int) or window < 1 or window % 2 == 0:
            raise ValueError(f"nms_window_size must be an odd int >= 1, got {window!r}")
        source: Union[str, Path] = self.conf["weights"]
        if isinstance(source, str) and source in _weights.CHECKPOINTS:
            source = _weights.resolve(source)
        state = _weights.load_state_dict(source, subkey="extractor")
        self.net = KorniaDISK(desc_dim=128)
        try:
            self.net.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"Checkpoint {source} does not fit DISK: {err}") from err
        self.net.eval()
        logger.info("Loaded DISK from %s", source)

    @property
    def descriptor_dim(self) -> int:
        return self.net.desc_dim

    def _network(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The heatmap [B, 1, H, W] and the input [B, C, H, W] of the last convolution, whose
        other outputs (the descriptors) are computed by :meth:`_describe` at the keypoints only.

        kornia's U-Net computes its last 5x5 convolution (80 -> 129 channels at full
        resolution: about 80 % of DISK's operations) on every pixel, for descriptors that are
        then read at a few hundred keypoints. Its instance norm and PReLU before it need the
        whole map and stay dense; the convolution is linear, so computing it per keypoint gives
        the same values up to summation order.
        """
        unet = self.net.unet
        features = [image]
        for layer in unet.path_down:
            features.append(layer(features[-1]))
        bottom, skips = features[-1], features[-2::-1][: len(unet.path_up)]
        for layer, skip in zip(unet.path_up[:-1], skips[:-1]):
            bottom = layer(bottom, skip)
        last = unet.path_up[-1]
        norm, gate, _, conv = last.conv  # InstanceNorm2d, PReLU, (no dropout), Conv2d(C, D + 1, 5)
        x = gate(norm(torch.cat([last.upsample(bottom), skips[-1]], dim=1)))  # [B, C, H, W]
        d = self.descriptor_dim
        heatmap = F.conv2d(x, conv.weight[d:], conv.bias[d:], padding=conv.kernel_size[0] // 2)
        return heatmap, x

    def _describe(self, x: torch.Tensor, xys: torch.Tensor) -> torch.Tensor:
        """The last convolution's descriptor channels at integer pixels ``xys`` [K, 2] of one
        image's map ``x`` [C, H, W] (zero padding, as ``padding="same"``), L2-normalised: [K, D]."""
        conv = self.net.unet.path_up[-1].conv[-1]
        size = conv.kernel_size[0]
        r = size // 2
        padded = F.pad(x, (r, r, r, r))
        offsets = torch.arange(size, device=x.device)
        rows = (xys[:, 1, None] + offsets)[:, :, None]  # [K, k, 1]: y - r + i in the padded map
        cols = (xys[:, 0, None] + offsets)[:, None, :]  # [K, 1, k]
        patches = padded[:, rows, cols].permute(1, 0, 2, 3).flatten(1)  # [K, C * k * k]
        d = self.descriptor_dim
        desc = F.linear(patches, conv.weight[:d].flatten(1), conv.bias[:d])  # [K, D]
        return F.normalize(desc, dim=-1)

    def _extract_batch(
        self, image: torch.Tensor, region: Optional[torch.Tensor] = None
    ) -> List[Dict[str, torch.Tensor]]:
        """See :meth:`Extractor._extract_batch`; ``image`` is ``[B, 3, H, W]`` RGB."""
        h, w = image.shape[-2:]
        if not self.conf["pad_if_not_divisible"] and (h % 16 or w % 16):
            raise ValueError(
                f"DISK needs H and W divisible by 16 when pad_if_not_divisible=False; got "
                f"(H, W) = ({h}, {w})"
            )
        if h % 16 or w % 16:  # zero-pad bottom and right to multiples of 16, as kornia
            image = F.pad(image, (0, -w % 16, 0, -h % 16), value=0.0)
        heatmaps, last_input = self._network(image)
        heatmaps = heatmaps[..., :h, :w]  # [B, 1, H, W]; keypoints index last_input uncropped
        if region is not None:  # no maximum outside: -inf passes no threshold, not even -inf
            heatmaps = heatmaps.masked_fill(~region[:, None], -float("inf"))
        budget = self.conf["max_num_keypoints"]
        n = int(budget) if budget is not None and budget > 0 else None
        window = int(self.conf["nms_window_size"])
        detected = heatmap_to_keypoints(
            heatmaps, n=n, window_size=window, score_threshold=float(self.conf["detection_threshold"])
        )
        dtype = last_input.dtype
        out = []
        for i, keypoints in enumerate(detected):
            if len(keypoints.xys) < self._keypoint_floor():  # low texture: the strongest maxima
                self._log_floor(len(keypoints.xys))
                (keypoints,) = heatmap_to_keypoints(
                    heatmaps[i : i + 1], n=n, window_size=window, score_threshold=-float("inf")
                )
            out.append({
                # integer pixels in at least float32 (bfloat16 holds no odd integer above 256)
                "keypoints": keypoints.xys.to(torch.promote_types(dtype, torch.float32)),
                "keypoint_scores": keypoints.detection_logp.to(dtype),
                "descriptors": self._describe(last_input[i], keypoints.xys),
            })
        return out
