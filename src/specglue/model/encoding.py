"""Rotary positional encoding of normalized keypoints.

Shape letters used throughout the model: B pairs in the batch, M / N keypoints in image 0 / 1,
D descriptor width, H attention heads, Dh = D / H head width.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..ops.kernels import Linear


class LearnableFourierPositionalEncoding(nn.Module):
    """Learned Fourier features of keypoint geometry, used as a rotary encoding of q and k.

    Args:
        M: number of geometric inputs per keypoint: 2 for (x, y), 4 when the features also
            carry scale and orientation (SIFT, DoGHardNet).
        dim: head width Dh; the encoding rotates Dh / 2 pairs of channels.
        F_dim: number of frequencies times two (defaults to ``dim``).
        gamma: initialisation scale of the frequencies.
    """

    def __init__(self, M: int, dim: int, F_dim: Optional[int] = None, gamma: float = 1.0) -> None:
        super().__init__()
        F_dim = F_dim if F_dim is not None else dim
        self.Wr = Linear(M, F_dim // 2, bias=False)  # name kept from the official checkpoints
        nn.init.normal_(self.Wr.weight.data, mean=0, std=gamma**-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode keypoint geometry.

        Args:
            x: [B, N, M] normalized keypoints (and scale, orientation).
        Returns:
            [2, B, 1, N, Dh]: cosines and sines, each repeated for the two channels they rotate.
        """
        projected = self.Wr(x)  # [B, N, Dh/2]
        emb = torch.stack([projected.cos(), projected.sin()], 0).unsqueeze(-3)
        # A non-negative dim: the legacy ONNX exporter rewrites a shared "-1" constant in place.
        return emb.repeat_interleave(2, dim=emb.ndim - 1)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Rotate each interleaved channel pair (a, b) to (-b, a). x: [..., Dh]."""
    x = x.unflatten(-1, (-1, 2))
    x1, x2 = x.unbind(dim=-1)
    return torch.stack((-x2, x1), dim=-1).flatten(start_dim=-2)


def apply_rotary(encoding: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Apply the rotary encoding [2, B, 1, N, Dh] to queries or keys t: [B, H, N, Dh]."""
    return t * encoding[0] + rotate_half(t) * encoding[1]
