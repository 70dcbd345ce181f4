"""The contract shared by every local-feature extractor of specglue.

Shape letters, used the same way across specglue:

- ``B``: images in a batch; ``N``: keypoints per image (after padding, the largest count of the
  batch); ``D``: descriptor width; ``H``, ``W``: image height and width in pixels.

Pixel-centre convention (the one of LightGlue, hloc and OpenCV): a keypoint ``(x, y)`` is in
pixels of the *input* image, ``x`` along the columns and ``y`` along the rows, and the centre
of the top-left pixel is ``(0, 0)``, so pixel ``(i, j)`` (row ``i``, column ``j``) covers
``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]``. The nearest pixel of a keypoint is therefore
``(round(y), round(x))``, which is how a specular mask is looked up.

Resizing by the factors ``(sx, sy) = (W' / W, H' / H)`` scales about the pixel corners, so a
point maps as ``x' = (x + 0.5) * sx - 0.5`` and back as ``x = (x' + 0.5) / sx - 0.5`` (the
half-pixel shift of LightGlue's ``Extractor.extract`` and hloc).

Resolution policy of :meth:`Extractor.extract`: ``conf["resize"]`` is the *largest* long side
the network sees. Larger images are shrunk to it (aspect kept, antialiased); smaller images are
used as they are, because enlarging a small, blurry frame (endoscopy: 320x240 to 720x576)
invents no detail and pushes the detection scores under their threshold. ``upsample=True``
enlarges them to ``resize`` as well, as the official LightGlue extractors do. :func:`shrink`
is this resize, the one path from an image to what the network sees: :func:`specglue.match_pair`,
the collections, the video, the evaluation (which hands stored images to :meth:`Extractor.extract`)
and the training's real pairs all go through it. An image under
:data:`MIN_IMAGE_SIDE` px on a side, before or after resizing, is refused with a
``ValueError`` (upsampling such an image only yields interpolation artefacts as keypoints: an
8x8 image enlarged to 1024 px gave 1355 of them).

Keypoint floor (ALIKED, DISK, SuperPoint): threshold detection keeps few keypoints on
low-texture images (smooth mucosa, blur). When it keeps fewer than
``keypoint_floor * max_num_keypoints``, the ``max_num_keypoints`` strongest local maxima are
taken instead (top-k detection), and this is logged at INFO level. ``keypoint_floor=0`` is the
official behaviour. :meth:`Extractor.official` builds an extractor with both official settings.

Region of interest (``roi``): the field of view of an endoscope, True inside. Keypoints are
detected only inside it, at least ``conf["roi_margin"]`` px (of the image the network sees)
away from its rim: the score map is cleared outside the shrunk region before non-maximum
suppression and the keypoint budget, so the whole budget lands on tissue and the rim's sharp
edge never becomes a corner. Unlike a specular mask, which drops keypoints after detection,
the region changes what is detected. :func:`specglue.features.roi.estimate_roi` estimates it.

Every extractor returns the same dictionary (see :meth:`Extractor.extract`):

- ``keypoints``: ``[B, N, 2]`` float32 ``(x, y)`` in input pixels;
- ``keypoint_scores``: ``[B, N]`` float32 detection scores;
- ``descriptors``: ``[B, N, D]`` float32;
- ``image_size``: ``[B, 2]`` float32 ``(W, H)`` of the input image;
- ``keypoint_mask``: ``[B, N]`` bool, False on the padding entries (keypoints, scores and
  descriptors are 0 there); all True when ``B == 1``, where there is no padding;
- SIFT only: ``scales`` ``[B, N]`` and ``oris`` ``[B, N]`` (radians).
"""

from __future__ import annotations

import itertools
import logging
import math
from types import MappingProxyType
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..confs import RESIZE
from ..ops.filters import max_filter
from ..specular.sample import dilate_mask, sample_mask

logger = logging.getLogger(__name__)

ImageLike = Union[torch.Tensor, np.ndarray]
MaskLike = Union[torch.Tensor, np.ndarray]

#: the keys every extractor returns, whatever the batch size
OUTPUT_KEYS = ("keypoints", "keypoint_scores", "descriptors", "image_size", "keypoint_mask")

#: the smallest height and width (px) of a network input; smaller images raise ValueError
MIN_IMAGE_SIDE = 32
#: default ``roi_margin``: px of the network input kept free of keypoints inside a region's rim
ROI_MARGIN = 4
#: default ``keypoint_floor`` of the learned detectors: in threshold mode, under this share of
#: the keypoint budget they fall back to top-k (0 = the official behaviour)
KEYPOINT_FLOOR = 0.25
#: the settings every extractor ends its ``default_conf`` with: how images reach the network
PREPROCESSING_CONF: Mapping[str, Any] = MappingProxyType({
    "resize": RESIZE,  # largest long side in px before detection; None = no resize
    "upsample": False,  # also enlarge images smaller than resize (official: True)
    "mask_margin": 0,  # px dilation of a specular mask passed to extract()
    "roi_margin": ROI_MARGIN,  # px of the network input kept free of keypoints inside a roi's rim
})


def max_pool_nms(scores: torch.Tensor, radius: int) -> torch.Tensor:
    """Non-maximum suppression by max-pooling, as in SuperPoint, LightGlue and ALIKED.

    A position survives if it equals the maximum of its ``(2r+1) x (2r+1)`` window (ties all
    survive). Two further rounds then add the positions that become the maximum of their
    window once the windows of the positions already kept are zeroed.

    Args:
        scores: ``[B, H, W]`` or ``[B, 1, H, W]`` score maps (non-negative).
        radius: suppression radius ``r`` in pixels (``>= 0``).

    Returns:
        The scores at the kept positions and 0 elsewhere, same shape as ``scores``.
    """
    if radius <= 0:
        return scores
    keep = scores == max_filter(scores, radius)
    for _ in range(2):
        covered = max_filter(keep.to(scores.dtype), radius) > 0
        rest = scores.masked_fill(covered, 0.0)
        keep = keep | ((rest == max_filter(rest, radius)) & ~covered)
    return scores.masked_fill(~keep, 0.0)


def network_size(height: int, width: int, resize: Optional[int], upsample: bool = False) -> Optional[Tuple[int, int]]:
    """``(H', W')`` the network sees for an image of ``height x width`` px under the resolution
    policy above (long side ``resize``, short side truncated, as kornia's ``side="long"``), or
    None when the image is used as it is. Benchmarks use it to express ground truth in the
    pixels a threshold is meant for."""
    if resize is None or (max(height, width) <= resize and not upsample):
        return None
    aspect = width / height  # kornia's arithmetic, so that the two never disagree by a pixel
    if aspect < 1:
        return int(resize), int(resize * aspect)
    return int(resize / aspect), int(resize)


def shrink(images: torch.Tensor, resize: Optional[int], upsample: bool = False) -> Tuple[torch.Tensor, Tuple[float, float]]:
    """``[B, C, H, W]`` images as the network sees them under the resolution policy above
    (kornia's antialiased resize to :func:`network_size`), and the factors ``(sx, sy)``; the
    one resize from an image to keypoints, which training data uses too."""
    h, w = images.shape[-2:]
    size = network_size(h, w, resize, upsample)
    if size is None:
        return images, (1.0, 1.0)
    return kornia.geometry.transform.resize(images, size, antialias=True), (size[1] / w, size[0] / h)


def merge_conf(
    defaults: Mapping[str, Any], conf: Mapping[str, Any], owner: str
) -> Mapping[str, Any]:
    """Defaults updated by ``conf``, read-only; an unknown key raises ``ValueError``."""
    unknown = sorted(set(conf) - set(defaults))
    if unknown:
        raise ValueError(
            f"Unknown config key(s) {unknown} for {owner}; known keys: {sorted(defaults)}"
        )
    return MappingProxyType({**defaults, **conf})


class Extractor(nn.Module):
    """Base class of the extractors: input checks, resizing, masking and batching.

    Subclasses set :attr:`default_conf` (which must hold ``max_num_keypoints`` and
    ``detection_threshold``, and ends with :data:`PREPROCESSING_CONF`),
    :attr:`official_conf`, :attr:`input_channels` (1 for grey, 3 for RGB networks) and
    implement :meth:`_extract_batch`.
    """

    #: the settings and their defaults; every key commented in each subclass
    default_conf: ClassVar[Dict[str, Any]] = {}
    #: the settings that differ from the official LightGlue extractor (see :meth:`official`)
    official_conf: ClassVar[Dict[str, Any]] = {"upsample": True}
    #: the channels the network reads: 1 (grey) or 3 (RGB)
    input_channels: ClassVar[int] = 3
    #: per-keypoint outputs beyond keypoints, scores and descriptors (e.g. SIFT scales)
    extra_keys: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, **conf: Any) -> None:
        super().__init__()
        self.conf = merge_conf(self.default_conf, conf, type(self).__name__)
        for key in ("mask_margin", "roi_margin"):
            margin = self.conf[key]
            if not isinstance(margin, int) or margin < 0:
                raise ValueError(f"{key} must be an int >= 0, got {margin!r}")
        resize = self.conf["resize"]
        if resize is not None and (not isinstance(resize, int) or resize <= 0):
            raise ValueError(f"resize must be None or an int > 0, got {resize!r}")
        floor = self.conf.get("keypoint_floor", 0.0)
        if not isinstance(floor, (int, float)) or not 0.0 <= floor <= 1.0:
            raise ValueError(f"keypoint_floor must be a fraction in [0, 1], got {floor!r}")

    @classmethod
    def official(cls, **conf: Any) -> "Extractor":
        """The extractor with the official LightGlue behaviour: images always resized to
        ``resize`` (upsampled too) and no keypoint floor; ``conf`` overrides the rest."""
        return cls(**{**cls.official_conf, **conf})

    def _keypoint_floor(self) -> int:
        """The fewest keypoints threshold detection may return before top-k takes over (0: off)."""
        budget = self.conf["max_num_keypoints"]
        if budget is None or budget <= 0:
            return 0
        return math.ceil(float(self.conf.get("keypoint_floor", 0.0)) * int(budget))

    def _log_floor(self, found: int) -> None:
        logger.info(
            "%s: threshold detection kept %d keypoints, under the floor of %d (keypoint_floor=%g); "
            "taking the %d strongest maxima instead", type(self).__name__, found,
            self._keypoint_floor(), self.conf["keypoint_floor"], self.conf["max_num_keypoints"],
        )

    # ------------------------------------------------------------------ subclass hook
    def _extract_batch(
        self, image: torch.Tensor, region: Optional[torch.Tensor] = None
    ) -> List[Dict[str, torch.Tensor]]:
        """Detect and describe, one dict per image, keypoints in pixels of ``image``.

        Args:
            image: ``[B, C, H, W]`` float in [0, 1], ``C == input_channels``.
            region: ``[B, H, W]`` bool, where keypoints may be detected (None: everywhere);
                the score map is cleared outside it before suppression and selection.

        Returns:
            ``B`` dicts with ``keypoints`` ``[N_b, 2]``, ``keypoint_scores`` ``[N_b]``,
            ``descriptors`` ``[N_b, D]`` and the :attr:`extra_keys` ``[N_b]``.
        """
        raise NotImplementedError

    @property
    def descriptor_dim(self) -> int:
        """``D``, the width of the descriptors."""
        raise NotImplementedError

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def extract(
        self,
        image: ImageLike,
        specular_mask: Optional[MaskLike] = None,
        roi: Optional[MaskLike] = None,
    ) -> Dict[str, torch.Tensor]:
        """Extract features from an image, shrunk to at most ``conf["resize"]`` px on its long
        side (enlarged too with ``conf["upsample"]``), keypoints mapped back to its pixels.

        Args:
            image: torch ``[B, C, H, W]`` or ``[C, H, W]`` float in [0, 1] with ``C`` 1 (grey)
                or 3 (RGB), or a numpy ``[H, W, 3]`` RGB (or ``[H, W]`` grey) uint8 array.
            specular_mask: optional bool ``[B, H, W]`` or ``[H, W]`` on the pixel grid of
                ``image``: keypoints whose nearest pixel lies in it (dilated by
                ``conf["mask_margin"]`` px) are dropped; the other keypoints are unchanged.
            roi: optional bool ``[B, H, W]`` or ``[H, W]`` region of interest on the pixel grid
                of ``image`` (True inside the field of view): keypoints are detected only in
                it, ``conf["roi_margin"]`` network px away from its rim (see the module docstring).

        Returns:
            The dict described in :mod:`specglue.features.base`: ``keypoints`` ``[B, N, 2]``,
            ``keypoint_scores`` ``[B, N]``, ``descriptors`` ``[B, N, D]``, ``image_size``
            ``[B, 2]`` as ``(W, H)``, ``keypoint_mask`` ``[B, N]`` (+ ``scales``, ``oris``
            ``[B, N]`` for SIFT), all in the pixels of the input image.

        Raises:
            ValueError: bad image or mask, or an image under :data:`MIN_IMAGE_SIDE` px on a
                side before or after resizing.
        """
        images = self._to_batch(image)
        return self._run(images, specular_mask, self.conf["resize"], roi)

    def forward(self, data: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """Extract features without resizing, as the official LightGlue extractors do.

        Args:
            data: ``{"image": [B, C, H, W] float in [0, 1]}``, optionally with
                ``"specular_mask"`` and ``"roi"``, each ``[B, H, W]`` bool.

        Returns:
            The same dict as :meth:`extract`, in the pixels of ``data["image"]``.
        """
        if "image" not in data:
            raise ValueError(f"{type(self).__name__} needs the key 'image'; got {sorted(data)}")
        images = self._to_batch(data["image"])
        return self._run(images, data.get("specular_mask"), None, data.get("roi"))

    # ------------------------------------------------------------------ internals
    def _device(self) -> torch.device:
        first = next(itertools.chain(self.parameters(), self.buffers()), None)
        return torch.device("cpu") if first is None else first.device

    def _to_batch(self, image: ImageLike) -> torch.Tensor:
        """Check the input and return it as ``[B, C, H, W]`` float32 in [0, 1]."""
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8:
                raise ValueError(
                    f"A numpy image must be uint8 [H, W, 3] RGB or [H, W] grey; got dtype "
                    f"{image.dtype} (pass floats in [0, 1] as a torch tensor [C, H, W])"
                )
            if image.ndim == 2:
                array = image[None]
            elif image.ndim == 3 and image.shape[2] in (1, 3):
                array = image.transpose(2, 0, 1)
            else:
                raise ValueError(
                    f"A numpy image must be [H, W, 3] (RGB) or [H, W]; got shape {image.shape}"
                )
            tensor = torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32) / 255.0
            return tensor[None].to(self._device())
        if not isinstance(image, torch.Tensor):
            raise ValueError(
                f"image must be a torch.Tensor or a numpy array, got {type(image).__name__}"
            )
        if not image.is_floating_point():
            raise ValueError(
                f"A torch image must be float in [0, 1]; got dtype {image.dtype} "
                "(divide uint8 images by 255)"
            )
        if image.dim() == 3:
            image = image[None]
        if image.dim() != 4 or image.shape[1] not in (1, 3):
            raise ValueError(
                "A torch image must be [B, C, H, W] or [C, H, W] with C in (1, 3); got shape "
                f"{tuple(image.shape)}"
            )
        if image.shape[0] == 0 or image.shape[2] < 2 or image.shape[3] < 2:
            raise ValueError(f"Empty image batch or image: shape {tuple(image.shape)}")
        if image.numel() and float(image.max()) > 1.0 + 1e-3:
            raise ValueError(
                f"A torch image must be in [0, 1]; its maximum is {float(image.max()):.3g} "
                "(divide 0-255 images by 255)"
            )
        return image.to(torch.float32)

    def _check_mask(
        self, mask: Optional[MaskLike], images: torch.Tensor, name: str = "specular_mask"
    ) -> Optional[torch.Tensor]:
        """Return the mask ``name`` as bool ``[B, H, W]`` on the images' device, or None;
        a specular mask is grown by ``conf["mask_margin"]``."""
        if mask is None:
            return None
        if isinstance(mask, np.ndarray):
            mask = torch.from_numpy(mask)
        if not isinstance(mask, torch.Tensor):
            raise ValueError(
                f"{name} must be a torch.Tensor or numpy array, got {type(mask).__name__}"
            )
        b, _, h, w = images.shape
        if mask.dim() == 2:
            mask = mask[None].expand(b, -1, -1)
        if mask.dim() == 4 and mask.shape[1] == 1:
            mask = mask[:, 0]
        if tuple(mask.shape) != (b, h, w):
            raise ValueError(
                f"{name} must have the image's shape [B, H, W] = {[b, h, w]} or [H, W] = "
                f"{[h, w]}; got {list(mask.shape)}"
            )
        if mask.dtype == torch.uint8:
            mask = mask != 0
        if mask.dtype != torch.bool:
            raise ValueError(f"{name} must be bool (or uint8 0/1), got dtype {mask.dtype}")
        mask = mask.to(images.device)
        if name != "specular_mask":
            return mask
        return dilate_mask(mask, self.conf["mask_margin"])

    def _to_network_channels(self, image: torch.Tensor) -> torch.Tensor:
        if self.input_channels == 3 and image.shape[1] == 1:
            return kornia.color.grayscale_to_rgb(image)
        if self.input_channels == 1 and image.shape[1] == 3:
            return kornia.color.rgb_to_grayscale(image)
        return image

    def _regions(
        self, roi: torch.Tensor, network_size: Tuple[int, int]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The region of interest shrunk by ``roi_margin`` network px: ``[B, H, W]`` on the
        input grid and ``[B, h, w]`` on the network's (a network pixel is in it when all of
        its footprint is); the image's own edges do not shrink it."""
        h, w = roi.shape[-2:]
        scale = min(network_size[0] / h, network_size[1] / w)
        margin = math.ceil(self.conf["roi_margin"] / scale) if self.conf["roi_margin"] else 0
        inside = ~dilate_mask(~roi, margin)  # [B, H, W]
        if tuple(network_size) == (h, w):
            return inside, inside
        coverage = F.interpolate(inside[:, None].float(), size=tuple(network_size), mode="area")
        return inside, coverage[:, 0] > 1 - 1e-6

    def _run(
        self,
        images: torch.Tensor,
        mask: Optional[MaskLike],
        resize: Optional[int],
        roi: Optional[MaskLike] = None,
    ) -> Dict[str, torch.Tensor]:
        b, _, h, w = images.shape
        masks = self._check_mask(mask, images)
        regions = self._check_mask(roi, images, "roi")
        images = images.to(self._device())
        resized, (sx, sy) = shrink(images, resize, self.conf["upsample"])
        was_resized = resized is not images
        if min(h, w, *resized.shape[-2:]) < MIN_IMAGE_SIDE:  # upsampling one only adds artefacts
            sizes = f"{w}x{h} px" + (f" (resized to {resized.shape[-1]}x{resized.shape[-2]})" if was_resized else "")
            raise ValueError(
                f"The image is too small for {type(self).__name__}: {sizes}; it needs at least "
                f"{MIN_IMAGE_SIDE} px on each side, before and after resizing"
            )
        scale = torch.tensor([sx, sy], dtype=torch.float32)
        inside, network_region = (None, None) if regions is None else self._regions(
            regions, tuple(resized.shape[-2:])
        )
        per_image = self._extract_batch(self._to_network_channels(resized), network_region)
        for i, feats in enumerate(per_image):
            kpts = feats["keypoints"].to(torch.float32)
            if was_resized:
                kpts = (kpts + 0.5) / scale.to(kpts.device) - 0.5
            feats["keypoints"] = kpts
            keep = torch.ones(len(kpts), dtype=torch.bool, device=kpts.device)
            if masks is not None:
                keep &= sample_mask(masks[i][None], kpts[None])[0] < 0.5
            if inside is not None:  # sub-pixel refinement may step over the shrunk rim
                keep &= sample_mask(inside[i][None], kpts[None])[0] > 0.5
            if not bool(keep.all()):
                per_image[i] = {k: v[keep] for k, v in feats.items()}
        out = self._collate(per_image)
        out["image_size"] = torch.tensor(
            [[float(w), float(h)]] * b, dtype=torch.float32, device=out["keypoints"].device
        )
        logger.debug("%s: %s keypoints", type(self).__name__, out["keypoint_mask"].sum(1).tolist())
        return out

    def _collate(self, per_image: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """Pad the per-image features to a common ``N`` and stack them."""
        n = max(int(f["keypoints"].shape[0]) for f in per_image)
        device = per_image[0]["keypoints"].device
        dim = self.descriptor_dim
        keys = ("keypoints", "keypoint_scores", "descriptors") + self.extra_keys
        out: Dict[str, List[torch.Tensor]] = {k: [] for k in keys + ("keypoint_mask",)}
        for feats in per_image:
            count = int(feats["keypoints"].shape[0])
            for key in keys:
                value = feats[key].to(device=device, dtype=torch.float32)
                if key == "descriptors" and value.shape[0] == 0:
                    value = value.reshape(0, dim)
                padded = value.new_zeros((n,) + tuple(value.shape[1:]))
                padded[:count] = value
                out[key].append(padded)
            valid = torch.zeros(n, dtype=torch.bool, device=device)
            valid[:count] = True
            out["keypoint_mask"].append(valid)
        return {k: torch.stack(v, 0).contiguous() for k, v in out.items()}
