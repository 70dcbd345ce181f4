"""Collate per-image features with different keypoint counts into one padded batch."""

from __future__ import annotations

from typing import Dict, Mapping, Sequence

import torch
import torch.nn.functional as F

# per-keypoint entries: padded along the keypoint axis
_PER_KEYPOINT = ("keypoints", "descriptors", "keypoint_scores", "scales", "oris", "keypoint_specular")


def pad_features(views: Sequence[Mapping[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Stack feature dicts of single images ([1, Ni, ...] each) into a batch [B, N, ...].

    Per-keypoint entries (keypoints, descriptors, scores, scales, oris, keypoint_specular) are
    zero-padded to the largest Ni and ``keypoint_mask`` [B, N] marks the real keypoints;
    ``image_size`` is stacked. Other entries (e.g. ``specular_mask``) are left out: pad them
    to the largest image yourself (top-left aligned).
    """
    if not views:
        raise ValueError("pad_features needs at least one feature dict")
    n = max(int(v["keypoints"].shape[1]) for v in views)
    batch: Dict[str, list] = {"keypoint_mask": [], "image_size": []}
    for v in views:
        if v["keypoints"].ndim != 3 or v["keypoints"].shape[0] != 1:
            raise ValueError(f"each view's 'keypoints' must be [1, N, 2], got {tuple(v['keypoints'].shape)}")
        k = int(v["keypoints"].shape[1])
        for key in _PER_KEYPOINT:
            if key in v:
                t = v[key][0]
                pad = (0, 0) * (t.ndim - 1) + (0, n - k)
                batch.setdefault(key, []).append(F.pad(t, pad))
        mask = torch.arange(n, device=v["keypoints"].device) < k
        if "keypoint_mask" in v:
            mask[:k] &= v["keypoint_mask"][0]
        batch["keypoint_mask"].append(mask)
        batch["image_size"].append(torch.as_tensor(v["image_size"]).reshape(-1, 2)[0])
    if any(len(values) != len(views) for values in batch.values()):
        raise ValueError("all views must carry the same keys")
    return {key: torch.stack(values) for key, values in batch.items()}
