"""The LightGlue loss (Lindenberger et al. 2023; glue-factory's ``NLLLoss``), on every layer.

- :func:`nll_loss`: negative log-likelihood of the ground-truth assignment: the mean of
  ``-log P[i, j]`` over the true matches, and the mean of the dustbin terms ``-log P[i, N]``
  / ``-log P[M, j]`` over the unmatched points of both images, mixed ``balance : 1 - balance``;
  ignored points (label -2) and padding do not count.
- :func:`deep_supervision_loss`: that loss on each layer's assignment, weighted
  ``gamma ** (L - 1 - i)`` and normalised by the sum of the weights (``gamma = 1``: the mean).
- :func:`confidence_loss`: binary cross-entropy teaching each layer's token confidence to
  predict whether the layer's prediction of a keypoint already equals the final layer's, so
  that early stopping and pruning keep working on a trained model.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..geometry import UNMATCHED
from ..model.heads import filter_matches


def nll_loss(log_assignment: torch.Tensor, matches0: torch.Tensor, matches1: torch.Tensor,
             balance: float = 0.5) -> torch.Tensor:
    """Per-pair loss [B].

    Args:
        log_assignment: [B, M+1, N+1] log-probabilities (last row / column: unmatched).
        matches0: [B, M], matches1: [B, N] labels (index, -1 unmatched, -2 ignored).
        balance: weight of the match term; ``1 - balance`` goes to the unmatched term.
    """
    b, m1, n1 = log_assignment.shape
    m, n = m1 - 1, n1 - 1
    positive = matches0 >= 0  # [B, M]
    rows = torch.nonzero(positive, as_tuple=True)
    log_positive = log_assignment[rows[0], rows[1], matches0[rows]]  # [P]
    per_pair_positive = torch.zeros(b, dtype=log_assignment.dtype, device=log_assignment.device)
    per_pair_positive = per_pair_positive.index_add(0, rows[0], -log_positive)
    num_positive = positive.sum(1).clamp(min=1)

    unmatched0, unmatched1 = matches0 == UNMATCHED, matches1 == UNMATCHED
    dustbin0 = -(log_assignment[:, :m, n] * unmatched0).sum(1)
    dustbin1 = -(log_assignment[:, m, :n] * unmatched1).sum(1)
    num_unmatched = (unmatched0.sum(1) + unmatched1.sum(1)).clamp(min=1)
    return (balance * per_pair_positive / num_positive
            + (1 - balance) * (dustbin0 + dustbin1) / num_unmatched)


def deep_supervision_loss(log_assignments: Sequence[torch.Tensor], matches0: torch.Tensor,
                          matches1: torch.Tensor, gamma: float = 1.0, balance: float = 0.5
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The weighted mean of :func:`nll_loss` over layers.

    Args:
        log_assignments: one [B, M+1, N+1] per layer, first to last.

    Returns:
        the loss [B] and the per-layer losses [L, B] (for logging).
    """
    per_layer = torch.stack([nll_loss(la, matches0, matches1, balance) for la in log_assignments])
    count = len(log_assignments)
    weights = torch.tensor([gamma ** (count - 1 - i) for i in range(count)], dtype=per_layer.dtype,
                           device=per_layer.device)
    return (weights[:, None] * per_layer).sum(0) / weights.sum(), per_layer


def confidence_loss(confidences: Sequence[Tuple[torch.Tensor, torch.Tensor]],
                    layer_matches0: Sequence[torch.Tensor], layer_matches1: Sequence[torch.Tensor],
                    valid0: torch.Tensor, valid1: torch.Tensor) -> torch.Tensor:
    """Token-confidence loss, a scalar.

    Args:
        confidences: per layer but the last, ``(conf0 [B, M], conf1 [B, N])`` in (0, 1).
        layer_matches0 / layer_matches1: per layer, last included, the predicted matches
            [B, M] / [B, N] (index or -1) of that layer's assignment.
        valid0, valid1: [B, M], [B, N] bool, False on padding.
    """
    if len(layer_matches0) != len(confidences) + 1:
        raise ValueError(f"need one prediction per layer ({len(confidences) + 1}), got {len(layer_matches0)}")
    final0, final1 = layer_matches0[-1], layer_matches1[-1]
    if not confidences:  # a one-layer matcher has no token confidence
        return final0.new_zeros((), dtype=torch.float32)
    terms = []
    for (conf0, conf1), pred0, pred1 in zip(confidences, layer_matches0, layer_matches1):
        target0, target1 = (pred0 == final0).to(conf0.dtype), (pred1 == final1).to(conf1.dtype)
        loss0 = F.binary_cross_entropy(conf0[valid0], target0[valid0], reduction="sum")
        loss1 = F.binary_cross_entropy(conf1[valid1], target1[valid1], reduction="sum")
        terms.append((loss0 + loss1) / (valid0.sum() + valid1.sum()).clamp(min=1))
    return torch.stack(terms).mean()


def lightglue_loss(outputs: Dict[str, Any], matches0: torch.Tensor, matches1: torch.Tensor, gamma: float = 1.0,
                   balance: float = 0.5, filter_threshold: float = 0.1) -> Dict[str, torch.Tensor]:
    """The whole loss of :meth:`specglue.LightGlue.forward_train` outputs against labels.

    Returns:
        ``total`` (scalar: mean over pairs of the deep-supervision NLL, plus the confidence
        loss), ``nll`` [B], ``confidence`` (scalar), ``per_layer`` [L, B].
    """
    nll, per_layer = deep_supervision_loss(outputs["log_assignment"], matches0, matches1, gamma, balance)
    predictions = [filter_matches(la.detach().float(), filter_threshold) for la in outputs["log_assignment"]]
    confidence = confidence_loss(outputs["confidence"], [p[0] for p in predictions], [p[1] for p in predictions],
                                 outputs["valid0"], outputs["valid1"])
    return {"total": nll.mean() + confidence, "nll": nll, "confidence": confidence, "per_layer": per_layer}


__all__ = ["confidence_loss", "deep_supervision_loss", "lightglue_loss", "nll_loss"]
