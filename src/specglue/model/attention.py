"""Self- and cross-attention blocks with optional attention masks.

Masks follow :func:`torch.nn.functional.scaled_dot_product_attention`: a boolean mask is True
where a query may attend to a key, a float mask is added to the attention logits (``-inf``
removes a key). Masks broadcast to [B, H, Lq, Lk]; the usual form is a key mask [B, 1, 1, Lk].
A query whose keys are all masked gets a zero message instead of NaN.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from .encoding import apply_rotary
from .kernels import Linear, attention


def _ffn(dim: int) -> nn.Sequential:
    """The update MLP on [x, message]: Linear(2D, 2D) -> LayerNorm -> GELU -> Linear(2D, D)."""
    return nn.Sequential(
        Linear(2 * dim, 2 * dim),
        nn.LayerNorm(2 * dim, elementwise_affine=True),
        nn.GELU(),
        Linear(2 * dim, dim),
    )


class SelfBlock(nn.Module):
    """Multi-head self-attention within one image, with rotary positional encoding."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.Wqkv = Linear(embed_dim, 3 * embed_dim, bias=bias)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.ffn = _ffn(embed_dim)

    def forward(
        self, x: torch.Tensor, encoding: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """x: [B, N, D], encoding: [2, B, 1, N, Dh], mask: broadcastable to [B, H, N, N]."""
        # The official layout interleaves q, k, v per channel: [..., H, Dh, 3].
        qkv = self.Wqkv(x).unflatten(-1, (self.num_heads, -1, 3))  # [B, N, H, Dh, 3]
        qkv = qkv.permute(4, 0, 2, 1, 3).contiguous()  # [3, B, H, N, Dh] in one copy
        q, k, v = qkv.unbind(0)
        q = apply_rotary(encoding, q)
        k = apply_rotary(encoding, k)
        context = attention(q, k, v, mask)
        message = self.out_proj(context.transpose(1, 2).flatten(start_dim=-2))
        return x + self.ffn(torch.cat([x, message], -1))


class CrossBlock(nn.Module):
    """Bidirectional multi-head cross-attention between the two images (shared q/k projection)."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.heads = num_heads
        self.to_qk = Linear(embed_dim, embed_dim, bias=bias)
        self.to_v = Linear(embed_dim, embed_dim, bias=bias)
        self.to_out = Linear(embed_dim, embed_dim, bias=bias)
        self.ffn = _ffn(embed_dim)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, L, D] -> [B, H, L, Dh]

    def forward(
        self,
        x0: torch.Tensor,
        x1: torch.Tensor,
        mask01: Optional[torch.Tensor] = None,
        mask10: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """x0: [B, M, D], x1: [B, N, D]; mask01 (queries of 0, keys of 1) broadcastable to
        [B, H, M, N], mask10 to [B, H, N, M]."""
        qk0, qk1 = self._heads(self.to_qk(x0)), self._heads(self.to_qk(x1))
        v0, v1 = self._heads(self.to_v(x0)), self._heads(self.to_v(x1))
        m0 = attention(qk0, qk1, v1, mask01)
        m1 = attention(qk1, qk0, v0, mask10)
        m0 = self.to_out(m0.transpose(1, 2).flatten(start_dim=-2))
        m1 = self.to_out(m1.transpose(1, 2).flatten(start_dim=-2))
        x0 = x0 + self.ffn(torch.cat([x0, m0], -1))
        x1 = x1 + self.ffn(torch.cat([x1, m1], -1))
        return x0, x1


class TransformerLayer(nn.Module):
    """One LightGlue layer: self-attention in each image, then cross-attention between them."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        self.self_attn = SelfBlock(embed_dim, num_heads, bias)
        self.cross_attn = CrossBlock(embed_dim, num_heads, bias)

    def forward(
        self,
        desc0: torch.Tensor,
        desc1: torch.Tensor,
        encoding0: torch.Tensor,
        encoding1: torch.Tensor,
        self_mask0: Optional[torch.Tensor] = None,
        self_mask1: Optional[torch.Tensor] = None,
        cross_mask01: Optional[torch.Tensor] = None,
        cross_mask10: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """desc0: [B, M, D], desc1: [B, N, D]; encodings [2, B, 1, M|N, Dh]; masks as in
        :class:`SelfBlock` and :class:`CrossBlock`."""
        desc0 = self.self_attn(desc0, encoding0, self_mask0)
        desc1 = self.self_attn(desc1, encoding1, self_mask1)
        return self.cross_attn(desc0, desc1, cross_mask01, cross_mask10)
