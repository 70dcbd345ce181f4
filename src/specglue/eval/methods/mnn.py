"""Mutual nearest neighbours with Lowe's ratio test in both directions (``mnn``)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

from ..cache import PairFeatures, Prediction
from .base import Method, MethodContext

#: Lowe's ratio (distance to the nearest over the second nearest must be below it, both ways)
MNN_RATIO = 0.8


def mutual_nn_ratio(desc0: torch.Tensor, desc1: torch.Tensor, ratio: float = MNN_RATIO
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mutual nearest neighbours with Lowe's ratio test in both directions.

    Args:
        desc0: ``[M, D]``; desc1: ``[N, D]`` descriptors (L2-normalised here).
        ratio: keep ``i -> j`` only if ``d(i, j) < ratio * d(i, j2)`` for the second nearest
            ``j2`` (and the same from ``j``); with a single candidate the test passes;
            ``ratio = 1`` disables it.

    Returns:
        ``(matches [S, 2] int64, scores [S])``; scores are cosine similarities.
    """
    m, n = desc0.shape[0], desc1.shape[0]
    if m == 0 or n == 0:
        return torch.zeros(0, 2, dtype=torch.long), torch.zeros(0)
    d0 = torch.nn.functional.normalize(desc0, dim=-1)
    d1 = torch.nn.functional.normalize(desc1, dim=-1)
    sim = d0 @ d1.T
    dist = (2 - 2 * sim).clamp(min=0).sqrt()

    def one_way(dist_: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        k = min(2, dist_.shape[1])
        vals, idx = dist_.topk(k, dim=1, largest=False)
        ok = torch.ones_like(vals[:, 0], dtype=torch.bool)
        if k == 2 and ratio < 1:
            ok = vals[:, 0] < ratio * vals[:, 1]
        return idx[:, 0], ok

    nn01, ok0 = one_way(dist)
    nn10, ok1 = one_way(dist.T)
    i = torch.arange(m, device=desc0.device)
    keep = ok0 & ok1[nn01] & (nn10[nn01] == i)
    matches = torch.stack([i[keep], nn01[keep]], dim=1)
    return matches, sim[i[keep], nn01[keep]]


class MutualNNMethod(Method):
    """Mutual nearest neighbours of L2-normalised descriptors with a two-way ratio test; the
    score of a match is the cosine similarity of its descriptors."""

    def __init__(self, ratio: float = MNN_RATIO, device: Optional[torch.device] = None) -> None:
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.name, self.ratio = "mnn", float(ratio)
        self.device = device or torch.device("cpu")

    @torch.inference_mode()
    def match(self, pair: PairFeatures) -> Prediction:
        d0 = torch.from_numpy(pair.image0.descriptors).float().to(self.device)
        d1 = torch.from_numpy(pair.image1.descriptors).float().to(self.device)
        matches, scores = mutual_nn_ratio(d0, d1, self.ratio)
        return Prediction(matches.cpu().numpy(), scores.cpu().numpy(), stop=-1)

    def description(self) -> Dict[str, Any]:
        return {**super().description(), "ratio": self.ratio}


def build(context: MethodContext) -> MutualNNMethod:
    return MutualNNMethod(context.mnn_ratio, context.device)


__all__ = ["MNN_RATIO", "MutualNNMethod", "build", "mutual_nn_ratio"]
