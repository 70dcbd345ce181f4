"""Validation of the matcher's input dict, shared by :class:`LightGlue` and the ONNX runner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from ..checks import check_tensor
from ..specular.sample import sample_mask


def kept_order(keep: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """For ``keep`` [B, N] bool: the indices [B, K] of the kept entries of each row, in their
    original order and padded to the longest row K, and which of them are real [B, K]."""
    counts = keep.sum(1)
    length = int(counts.max()) if counts.numel() else 0
    # a stable sort moves the kept entries first, in their original order
    order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)[:, :length]
    filled = torch.arange(length, device=keep.device)[None] < counts[:, None]
    return order, filled


@dataclass
class ImageInputs:
    """One side of the matcher input after validation (see :func:`parse_image`)."""

    keypoints: torch.Tensor  # [B, N, 2] pixels
    descriptors: torch.Tensor  # [B, N, Din]
    size: torch.Tensor  # [B, 2] (W, H)
    valid: torch.Tensor  # [B, N] bool: not padding
    specularity: Optional[torch.Tensor]  # [B, N] float in [0, 1]
    scale_ori: Optional[torch.Tensor]  # [B, N, 2] scales, orientations

    def subset(self, keep: torch.Tensor) -> Tuple["ImageInputs", torch.Tensor]:
        """Drop keypoints where ``keep`` [B, N] is False; returns the smaller image and the
        original index of each kept keypoint [B, N'] (-1 on padding)."""
        order, filled = kept_order(keep)

        def gather(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            if t is None:
                return None
            idx = order if t.ndim == 2 else order[..., None].expand(-1, -1, t.shape[-1])
            return t.gather(1, idx)

        sub = ImageInputs(gather(self.keypoints), gather(self.descriptors), self.size, filled,
                          None, gather(self.scale_ori))
        return sub, torch.where(filled, order, -1)

    def pair(self, k: int) -> Tuple["ImageInputs", torch.Tensor]:
        """Pair ``k`` alone without its padding: a batch of one, and the original index of each
        of its keypoints [1, N']."""
        kept = torch.nonzero(self.valid[k]).squeeze(1)

        def pick(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return None if t is None else t[k:k + 1].index_select(1, kept)

        sub = ImageInputs(pick(self.keypoints), pick(self.descriptors), self.size[k:k + 1],
                          pick(self.valid), pick(self.specularity), pick(self.scale_ori))
        return sub, kept[None]


def parse_image(data: Mapping[str, Any], key: str, n: str, sizes: Dict[str, int], *, input_dim: int,
                add_scale_ori: bool, mask_margin: int, owner: str) -> ImageInputs:
    """Validate and normalise ``data[key]`` (see :meth:`specglue.LightGlue.forward` for the keys).

    ``n`` names the keypoint axis in messages ("M" or "N"); ``sizes`` records named sizes shared
    by the two images (B); ``owner`` names the model in messages about its weights. Raises
    ``ValueError`` / ``TypeError`` naming the key and the expected shape or dtype.
    """
    if key not in data:
        raise ValueError(f"data is missing {key!r}: a dict with 'keypoints' [B, {n}, 2], "
                         f"'descriptors' [B, {n}, {input_dim}] and 'image_size' [B, 2]")
    view = data[key]
    if not isinstance(view, Mapping):
        raise TypeError(f"data[{key!r}] must be a dict, got {type(view).__name__}")
    for required in ("keypoints", "descriptors"):
        if required not in view:
            raise ValueError(f"data[{key!r}] is missing {required!r}")
    kpts = check_tensor(f"data[{key!r}]['keypoints']", view["keypoints"], ("B", n, 2), sizes, finite=True)
    desc = view["descriptors"]
    check_tensor(f"data[{key!r}]['descriptors']", desc, ("B", n, "Din"), dict(sizes), finite=True)
    if desc.shape[-1] != input_dim:
        raise ValueError(
            f"data[{key!r}]['descriptors'] has width {desc.shape[-1]} but {owner} expects "
            f"[B, {n}, {input_dim}] (input_dim of its weights)"
        )
    b, num = kpts.shape[:2]
    device = kpts.device

    if "image_size" in view and view["image_size"] is not None:
        size = view["image_size"]
        size = size if isinstance(size, torch.Tensor) else torch.as_tensor(size)
        size = size.to(device)
        if size.ndim == 1:
            size = size[None].expand(b, -1)
        check_tensor(f"data[{key!r}]['image_size']", size, ("B", 2), sizes, kind="any", finite=True)
        size = size.float()
        if bool((size <= 0).any()):
            raise ValueError(f"data[{key!r}]['image_size'] must be positive (W, H), got {size.tolist()}")
    elif "image" in view and view["image"] is not None:
        image = check_tensor(f"data[{key!r}]['image']", view["image"], ("B", "C", "H", "W"),
                             {"B": b}, kind="any")
        h, w = image.shape[-2:]
        size = torch.tensor([w, h], dtype=torch.float32, device=device)[None].expand(b, -1)
    else:
        raise ValueError(f"data[{key!r}] needs 'image_size' [B, 2] (W, H) or 'image' [B, C, H, W] "
                         "to normalize the keypoints")

    if view.get("keypoint_mask") is not None:
        valid = check_tensor(f"data[{key!r}]['keypoint_mask']", view["keypoint_mask"], ("B", n), sizes,
                             kind="bool").to(device)
    elif view.get("lengths") is not None:
        lengths = torch.as_tensor(view["lengths"], device=device)
        check_tensor(f"data[{key!r}]['lengths']", lengths, ("B",), sizes, kind="int")
        if bool((lengths < 0).any() or (lengths > num).any()):
            raise ValueError(f"data[{key!r}]['lengths'] must lie in [0, {num}], got {lengths.tolist()}")
        valid = torch.arange(num, device=device)[None] < lengths[:, None]
    else:
        valid = torch.ones((b, num), dtype=torch.bool, device=device)

    scale_ori = None
    if add_scale_ori:
        parts = []
        for k in ("scales", "oris"):
            if view.get(k) is None:
                raise ValueError(f"data[{key!r}] is missing {k!r} [B, {n}]: {owner} encodes "
                                 "keypoint scale and orientation (add_scale_ori)")
            parts.append(check_tensor(f"data[{key!r}][{k!r}]", view[k], ("B", n), sizes, finite=True))
        scale_ori = torch.stack(parts, -1).float()

    specularity = _parse_specularity(view, key, n, kpts, size, sizes, mask_margin)
    return ImageInputs(kpts, desc, size, valid, specularity, scale_ori)

def _parse_specularity(view: Mapping[str, Any], key: str, n: str, kpts: torch.Tensor,
                       size: torch.Tensor, sizes: Dict[str, int], mask_margin: int) -> Optional[torch.Tensor]:
    """Per-keypoint specularity [B, N] from ``keypoint_specular`` and / or ``specular_mask``
    (the larger of the two where both are given), or None."""
    found = []
    if view.get("keypoint_specular") is not None:
        name = f"data[{key!r}]['keypoint_specular']"
        spec = check_tensor(name, view["keypoint_specular"], ("B", n), sizes, kind="bool_or_float",
                            finite=True).float()
        if bool(((spec < 0) | (spec > 1)).any()):
            raise ValueError(f"{name} must lie in [0, 1] (1 = specular)")
        found.append(spec)
    if view.get("specular_mask") is not None:
        name = f"data[{key!r}]['specular_mask']"
        mask = check_tensor(name, view["specular_mask"], ("B", "H", "W"), {"B": kpts.shape[0]},
                            kind="bool_or_float", finite=True)
        if mask.is_floating_point() and bool(((mask < 0) | (mask > 1)).any()):
            raise ValueError(f"{name} must lie in [0, 1] (1 = specular)")
        want = size.round().long().amax(0)  # (W, H) of the largest image in the batch
        if mask.shape[-1] != int(want[0]) or mask.shape[-2] != int(want[1]):
            raise ValueError(
                f"{name} has shape {tuple(mask.shape)} but image_size is (W, H) = "
                f"({int(want[0])}, {int(want[1])}): expected [B, {int(want[1])}, {int(want[0])}]"
            )
        found.append(sample_mask(mask.to(kpts.device), kpts, mask_margin))
    if not found:
        return None
    return torch.stack(found).amax(0)
