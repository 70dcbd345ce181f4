"""Per-layer heads: token confidence (adaptive depth/width) and the match assignment."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.kernels import Linear, matmul_nt


class TokenConfidence(nn.Module):
    """Predicts, per keypoint, whether its match will no longer change in later layers."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Sequential(Linear(dim, 1), nn.Sigmoid())

    def forward(
        self, desc0: torch.Tensor, desc1: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """desc0: [B, M, D], desc1: [B, N, D] -> confidences [B, M], [B, N] in (0, 1)."""
        return (
            self.token(desc0.detach()).squeeze(-1),
            self.token(desc1.detach()).squeeze(-1),
        )


def log_unmatched(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """log(1 - sigmoid(z) e^w), the dustbin log-probability of a point with matchability logit
    ``z`` and log-weight ``w`` in [-inf, 0], in fp32 and without rounding sigmoid(z) to 1 (which
    made it -inf for z > ~5.5 in bf16, > ~17 in fp32): with c = log(1 - e^w),
    1 - sigmoid(z) e^w = (1 + e^(z + c)) / (1 + e^z) = (e^-z + e^c) / (e^-z + 1), the first form
    for z <= 0, the second for z > 0 (no cancellation of large terms). z, w: [B, N] -> [B, N]
    float32."""
    z, w = z.float(), w.float()
    c = torch.log1p(-torch.exp(w))  # -inf at w = 0 (the point as it is), 0 at w = -inf (unmatchable)
    # log(e^-z + e^c) written out (the ONNX exporter has no logaddexp / expm1)
    log_sum = torch.maximum(-z, c) + torch.log1p(torch.exp(-(-z - c).abs()))
    return torch.where(z > 0, log_sum - F.softplus(-z), F.softplus(z + c) - F.softplus(z))


def sigmoid_log_double_softmax(
    sim: torch.Tensor,
    z0: torch.Tensor,
    z1: torch.Tensor,
    log_weight0: Optional[torch.Tensor] = None,
    log_weight1: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Log-assignment matrix with an unmatched ("dustbin") row and column.

    Args:
        sim: [B, M, N] similarity logits.
        z0, z1: [B, M, 1], [B, N, 1] matchability logits.
        log_weight0, log_weight1: optional [B, M], [B, N] log-weights w in [-inf, 0] that scale
            the matchability sigma(z) by exp(w): 0 leaves a point unchanged, -inf makes it
            unmatchable (its row/column is -inf and its dustbin entry 0).
    Returns:
        [B, M+1, N+1] log-probabilities; entry [i, N] is "i unmatched", [M, j] "j unmatched".
    """
    b, m, n = sim.shape
    if log_weight0 is None and log_weight1 is None:
        certainties = F.logsigmoid(z0) + F.logsigmoid(z1).transpose(1, 2)
        scores0 = F.log_softmax(sim, 2)
        scores1 = F.log_softmax(sim.transpose(-1, -2).contiguous(), 2).transpose(-1, -2)
        scores = sim.new_full((b, m + 1, n + 1), 0)
        scores[:, :m, :n] = scores0 + scores1 + certainties
        scores[:, :-1, -1] = F.logsigmoid(-z0.squeeze(-1))
        scores[:, -1, :-1] = F.logsigmoid(-z1.squeeze(-1))
        return scores

    w0 = log_weight0 if log_weight0 is not None else sim.new_zeros((b, m))
    w1 = log_weight1 if log_weight1 is not None else sim.new_zeros((b, n))
    allowed = torch.isfinite(w0)[:, :, None] & torch.isfinite(w1)[:, None, :]  # [B, M, N]
    # A finite fill keeps fully masked rows free of NaN (also in the backward pass).
    sim = sim.masked_fill(~allowed, torch.finfo(sim.dtype).min)
    w0f, w1f = w0.clamp(min=-1e4), w1.clamp(min=-1e4)
    certainties = (F.logsigmoid(z0) + w0f[..., None]) + (F.logsigmoid(z1) + w1f[..., None]).transpose(1, 2)
    scores0 = F.log_softmax(sim, 2)
    scores1 = F.log_softmax(sim.transpose(-1, -2).contiguous(), 2).transpose(-1, -2)
    inner = torch.where(allowed, scores0 + scores1 + certainties, -torch.inf)
    dust0, dust1 = log_unmatched(z0.squeeze(-1), w0), log_unmatched(z1.squeeze(-1), w1)
    scores = sim.new_full((b, m + 1, n + 1), 0)
    scores[:, :m, :n] = inner
    scores[:, :-1, -1] = dust0
    scores[:, -1, :-1] = dust1
    return scores


class MatchAssignment(nn.Module):
    """Similarity and matchability heads that produce the log-assignment matrix."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.matchability = Linear(dim, 1, bias=True)
        self.final_proj = Linear(dim, dim, bias=True)

    def forward(
        self,
        desc0: torch.Tensor,
        desc1: torch.Tensor,
        log_weight0: Optional[torch.Tensor] = None,
        log_weight1: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """desc0: [B, M, D], desc1: [B, N, D]; optional log-weights [B, M], [B, N] (see
        :func:`sigmoid_log_double_softmax`). Returns scores [B, M+1, N+1] and sim [B, M, N]."""
        mdesc0, mdesc1 = self.final_proj(desc0), self.final_proj(desc1)
        d = mdesc0.shape[-1]
        mdesc0, mdesc1 = mdesc0 / d**0.25, mdesc1 / d**0.25
        sim = matmul_nt(mdesc0, mdesc1)  # [B, M, N]
        z0, z1 = self.matchability(desc0), self.matchability(desc1)
        scores = sigmoid_log_double_softmax(sim, z0, z1, log_weight0, log_weight1)
        return scores, sim

    def get_matchability(self, desc: torch.Tensor) -> torch.Tensor:
        """desc: [B, N, D] -> probability of being matchable [B, N]."""
        return torch.sigmoid(self.matchability(desc)).squeeze(-1)


def filter_matches(
    scores: torch.Tensor, threshold: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mutual nearest neighbours in a log-assignment matrix, kept if exp(score) > threshold.

    Args:
        scores: [B, M+1, N+1] log-assignment (the dustbins are ignored).
    Returns:
        matches0 [B, M] (index in image 1, -1 if unmatched), matches1 [B, N],
        matching_scores0 [B, M], matching_scores1 [B, N] (exp(score) of mutual pairs, else 0).
    """
    inner = scores[:, :-1, :-1]
    max0, max1 = inner.max(2), inner.max(1)
    m0, m1 = max0.indices, max1.indices
    indices0 = torch.arange(m0.shape[1], device=m0.device)[None]
    indices1 = torch.arange(m1.shape[1], device=m1.device)[None]
    mutual0 = indices0 == m1.gather(1, m0)
    mutual1 = indices1 == m0.gather(1, m1)
    max0_exp = max0.values.exp()
    zero = max0_exp.new_tensor(0)
    mscores0 = torch.where(mutual0, max0_exp, zero)
    mscores1 = torch.where(mutual1, mscores0.gather(1, m1), zero)
    valid0 = mutual0 & (mscores0 > threshold)
    valid1 = mutual1 & valid0.gather(1, m1)
    m0 = torch.where(valid0, m0, -1)
    m1 = torch.where(valid1, m1, -1)
    return m0, m1, mscores0, mscores1
