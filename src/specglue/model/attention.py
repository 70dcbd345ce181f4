"""Self- and cross-attention blocks with optional attention masks.

Masks follow :func:`torch.nn.functional.scaled_dot_product_attention`: a boolean mask is True
where a query may attend to a key, a float mask is added to the attention logits (``-inf``
removes a key). Masks broadcast to [B, H, Lq, Lk]; the usual form is a key mask [B, 1, 1, Lk].
A query whose keys are all masked gets a zero message instead of NaN.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .encoding import apply_rotary
from ..ops.kernels import Linear, attention, cpu_bf16_inference, derived_linear, inference


def _ffn(dim: int) -> nn.Sequential:
    """The update MLP on [x, message]: Linear(2D, 2D) -> LayerNorm -> GELU -> Linear(2D, D)."""
    return nn.Sequential(
        Linear(2 * dim, 2 * dim, quantizable=True),
        nn.LayerNorm(2 * dim, elementwise_affine=True),
        nn.GELU(),
        Linear(2 * dim, dim, quantizable=True),
    )


def _folded_update(owner: nn.Module, out_proj: Linear, ffn: nn.Sequential
                   ) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """The output projection folded into the MLP's first layer, for inference: with W1 = [Wx | Wm],
    W1 [x, Wo c + bo] + b1 = [Wx | Wm Wo] [x, c] + (Wm bo + b1). Returns that layer on [x, c]
    ([2D] -> [2D]), its weights kept on ``owner`` until a source changes; None for parameters
    created under ``torch.inference_mode`` (:func:`derived_linear`)."""
    first = ffn[0]

    def fold() -> Tuple[torch.Tensor, torch.Tensor]:
        d = out_proj.weight.shape[0]
        w1, wo = first.weight.double(), out_proj.weight.double()
        weight = torch.cat([w1[:, :d], w1[:, d:] @ wo], 1).to(first.weight.dtype)
        bias = first.bias.double()
        if out_proj.bias is not None:
            bias = bias + w1[:, d:] @ out_proj.bias.double()
        return weight, bias.to(first.bias.dtype)

    sources = (out_proj.weight, out_proj.bias, first.weight, first.bias)
    return derived_linear(owner, "_folded_update", sources, fold)


def _update(owner: nn.Module, x: torch.Tensor, contexts: Sequence[torch.Tensor], out_proj: Linear,
            ffn: nn.Sequential) -> torch.Tensor:
    """The residual update x + ffn([x, out_proj(context)]). x: [B, L, D]; contexts: [B, Li, H, Dh]
    whose Li add up to L (the images' tokens one after the other).

    Outside autograd (and tracing) the output projection is folded into the MLP's first layer
    (:func:`_folded_update`): one product fewer per block, ~10 % of the layer's multiply-adds,
    the same result up to rounding; the contexts are written straight into the MLP's input."""
    folded = _folded_update(owner, out_proj, ffn) if inference(x, out_proj.weight, ffn[0].weight) else None
    if folded is None:
        message = out_proj(torch.cat(contexts, 1).flatten(start_dim=-2))  # [B, L, D]
        return x + ffn(torch.cat([x, message], -1))
    d = x.shape[-1]
    dtype = torch.bfloat16 if cpu_bf16_inference(x, ffn[0].weight) else x.dtype
    inputs = x.new_empty((*x.shape[:-1], 2 * d), dtype=dtype)  # [B, L, 2D] = [x, context]
    inputs[..., :d] = x
    context = inputs[..., d:].unflatten(-1, contexts[0].shape[-2:])  # [B, L, H, Dh] view
    start = 0
    for part in contexts:
        context[:, start:start + part.shape[1]] = part
        start += part.shape[1]
    hidden = folded(inputs)
    for layer in ffn[1:]:
        hidden = layer(hidden)
    return x + hidden


def _rotate_split_pairs(t: torch.Tensor, encoding: torch.Tensor) -> torch.Tensor:
    """The rotary encoding of :func:`apply_rotary` on channels stored pair-split: each head's
    channels (0, 2, 4, ..., 1, 3, 5, ...), so that a pair (2j, 2j + 1) sits at (j, j + Dh / 2).
    t: [B, N, S, H, Dh] (S stacked tensors, e.g. q and k); encoding: [2, B, 1, N, Dh] in the
    official channel order, used in t's dtype (bf16 under CPU autocast: mixed-dtype products
    took 2.4x longer). Returns a new [B, N, S, H, Dh] tensor in t's dtype."""
    half = t.shape[-1] // 2
    enc = encoding.squeeze(2).to(t.dtype)  # [2, B, N, Dh]
    # each [B, N, 1, 1, Dh / 2], contiguous
    cos_even, cos_odd, sin_even, sin_odd = (e.contiguous()[:, :, None, None] for e in (
        enc[0, ..., 0::2], enc[0, ..., 1::2], enc[1, ..., 0::2], enc[1, ..., 1::2]))
    even, odd = t[..., :half], t[..., half:]
    out = t.new_empty(t.shape)
    out_even, out_odd = out[..., :half], out[..., half:]
    # official: out[2j] = t[2j] e0[2j] - t[2j+1] e1[2j], out[2j+1] = t[2j+1] e0[2j+1] + t[2j] e1[2j+1]
    torch.mul(even, cos_even, out=out_even)
    out_even.addcmul_(odd, sin_even, value=-1)
    torch.mul(odd, cos_odd, out=out_odd)
    out_odd.addcmul_(even, sin_odd)
    return out


class SelfBlock(nn.Module):
    """Multi-head self-attention within each image, with rotary positional encoding.

    The tokens of several images may come stacked along the token axis: the projections and the
    MLP then run as one product over all of them (fewer, larger products are faster on the CPU),
    while attention stays within each image.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.Wqkv = Linear(embed_dim, 3 * embed_dim, bias=bias, quantizable=True)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, quantizable=True)
        self.ffn = _ffn(embed_dim)

    def _inference_qkv(self) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
        """Wqkv with its rows reordered for inference: q, k, v one after the other, each head
        by head, and within a head of q and k the even channels first, then the odd ones (one
        permutation of both q and k leaves q . k unchanged). The projection then needs no
        copy to split q, k and v, and the rotary pairs (2j, 2j + 1) become (j, j + Dh / 2):
        contiguous halves. None for inference-mode parameters (:func:`derived_linear`)."""

        def reorder() -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
            dim = self.Wqkv.weight.shape[1]
            head_dim = dim // self.num_heads
            split = torch.cat([torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)])
            channels = torch.stack([split, split, torch.arange(head_dim)])  # [3, Dh]
            heads = torch.arange(self.num_heads)[None, :, None]  # [1, H, 1]
            # official row of (q|k|v c, head h, channel d): (h * Dh + d) * 3 + c
            rows = ((heads * head_dim + channels[:, None]) * 3 + torch.arange(3)[:, None, None]).flatten()
            rows = rows.to(self.Wqkv.weight.device)
            return self.Wqkv.weight[rows], None if self.Wqkv.bias is None else self.Wqkv.bias[rows]

        return derived_linear(self, "_inference_qkv_cache", (self.Wqkv.weight, self.Wqkv.bias), reorder)

    def forward(
        self,
        x: torch.Tensor,
        encodings: Union[torch.Tensor, Sequence[torch.Tensor]],
        masks: Union[None, torch.Tensor, Sequence[Optional[torch.Tensor]]] = None,
    ) -> torch.Tensor:
        """x: [B, N, D], the N = N0 + N1 + ... tokens of one or more images one after the other;
        encodings: one [2, B, 1, Ni, Dh] per image (a tensor for one image); masks: one per image,
        broadcastable to [B, H, Ni, Ni], or None."""
        if isinstance(encodings, torch.Tensor):
            encodings, masks = (encodings,), (masks,)
        elif masks is None:
            masks = (None,) * len(encodings)
        elif isinstance(masks, torch.Tensor) or len(masks) != len(encodings):
            raise ValueError(f"masks must be one per image ({len(encodings)} encodings) or None")
        encoding = encodings[0] if len(encodings) == 1 else torch.cat(encodings, -2)  # [2, B, 1, N, Dh]
        project = self._inference_qkv() if inference(x, self.Wqkv.weight) else None
        if project is None:
            # The official layout interleaves q, k, v per channel: [..., H, Dh, 3].
            qkv = self.Wqkv(x).unflatten(-1, (self.num_heads, -1, 3))  # [B, N, H, Dh, 3]
            qkv = qkv.permute(4, 0, 2, 1, 3).contiguous()  # [3, B, H, N, Dh] in one copy
            q, k = apply_rotary(encoding, qkv[:2]).unbind(0)  # q and k of every image at once
            v = qkv[2]
        else:
            qkv = project(x).unflatten(-1, (3, self.num_heads, -1))  # [B, N, 3, H, Dh]
            qk = _rotate_split_pairs(qkv[:, :, :2], encoding)  # [B, N, 2, H, Dh]
            q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
        contexts, start = [], 0
        for image_encoding, mask in zip(encodings, masks):
            stop = start + image_encoding.shape[-2]
            part = slice(start, stop)
            context = attention(q[:, :, part], k[:, :, part], v[:, :, part], mask)  # [B, H, Ni, Dh]
            contexts.append(context.transpose(1, 2))  # [B, Ni, H, Dh]
            start = stop
        return _update(self, x, contexts, self.out_proj, self.ffn)


class CrossBlock(nn.Module):
    """Bidirectional multi-head cross-attention between the two images (shared q/k projection).

    The two images' tokens come stacked along the token axis, so that every projection and the
    MLP run once over both."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.heads = num_heads
        self.to_qk = Linear(embed_dim, embed_dim, bias=bias, quantizable=True)
        self.to_v = Linear(embed_dim, embed_dim, bias=bias, quantizable=True)
        self.to_out = Linear(embed_dim, embed_dim, bias=bias, quantizable=True)
        self.ffn = _ffn(embed_dim)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, L, D] -> [B, H, L, Dh]

    def _inference_qkv(self) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
        """to_qk and to_v as one projection for inference ([2D, D] weight: one product instead
        of two); None for inference-mode parameters (:func:`derived_linear`)."""

        def stack() -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
            weight = torch.cat([self.to_qk.weight, self.to_v.weight])
            return weight, None if self.to_qk.bias is None else torch.cat([self.to_qk.bias, self.to_v.bias])

        sources = (self.to_qk.weight, self.to_qk.bias, self.to_v.weight, self.to_v.bias)
        return derived_linear(self, "_inference_qkv_cache", sources, stack)

    def forward(
        self,
        x: torch.Tensor,
        m: int,
        mask01: Optional[torch.Tensor] = None,
        mask10: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """x: [B, M + N, D], the M tokens of image 0 then the N of image 1; mask01 (queries of 0,
        keys of 1) broadcastable to [B, H, M, N], mask10 to [B, H, N, M]. Returns [B, M + N, D]."""
        project = self._inference_qkv() if inference(x, self.to_qk.weight) else None
        if project is None:
            qk, v = self._heads(self.to_qk(x)), self._heads(self.to_v(x))  # [B, H, M + N, Dh]
        else:
            qkv = project(x).unflatten(-1, (2, self.heads, -1))  # [B, M + N, 2, H, Dh]
            qk, v = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)
        qk0, qk1, v0, v1 = qk[:, :, :m], qk[:, :, m:], v[:, :, :m], v[:, :, m:]
        message0 = attention(qk0, qk1, v1, mask01).transpose(1, 2)  # [B, M, H, Dh]
        message1 = attention(qk1, qk0, v0, mask10).transpose(1, 2)  # [B, N, H, Dh]
        return _update(self, x, (message0, message1), self.to_out, self.ffn)


class TransformerLayer(nn.Module):
    """One LightGlue layer: self-attention in each image, then cross-attention between them.

    Both images' tokens go through the layer stacked ([B, M + N, D]): each linear layer is one
    product over both images, as in the official model's weights but with half the calls."""

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
        :class:`SelfBlock` and :class:`CrossBlock`. Returns desc0, desc1 (views of one tensor)."""
        m = desc0.shape[1]
        x = torch.cat([desc0, desc1], 1)  # [B, M + N, D]
        x = self.self_attn(x, (encoding0, encoding1), (self_mask0, self_mask1))
        x = self.cross_attn(x, m, cross_mask01, cross_mask10)
        return x[:, :m], x[:, m:]
