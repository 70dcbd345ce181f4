"""Self- and cross-attention blocks with optional attention masks.

Masks follow :func:`torch.nn.functional.scaled_dot_product_attention`: a boolean mask is True
where a query may attend to a key, a float mask is added to the attention logits (``-inf``
removes a key). Masks broadcast to [B, H, Lq, Lk]; the usual form is a key mask [B, 1, 1, Lk].
A query whose keys are all masked gets a zero message instead of NaN.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .encoding import apply_rotary
from .kernels import Linear, attention, bf16_copies, cpu_bf16_inference, derived, inference, linear, versions


def _ffn(dim: int) -> nn.Sequential:
    """The update MLP on [x, message]: Linear(2D, 2D) -> LayerNorm -> GELU -> Linear(2D, D)."""
    return nn.Sequential(
        Linear(2 * dim, 2 * dim),
        nn.LayerNorm(2 * dim, elementwise_affine=True),
        nn.GELU(),
        Linear(2 * dim, dim),
    )


def _folded_update(owner: nn.Module, out_proj: Linear, ffn: nn.Sequential) -> Optional[Tuple[torch.Tensor, ...]]:
    """The output projection folded into the MLP's first layer, for inference: with W1 = [Wx | Wm],
    W1 [x, Wo c + bo] + b1 = [Wx | Wm Wo] [x, c] + (Wm bo + b1). Returns the folded weight
    [2D, 2D] and bias [2D] in fp32 and in bf16, kept on ``owner`` until a source changes; None
    for parameters created under ``torch.inference_mode`` (no version counter: the fold would be
    made again on every call)."""
    first = ffn[0]
    sources = (out_proj.weight, out_proj.bias, first.weight, first.bias)
    if versions(sources) is None:
        return None

    def fold() -> Tuple[torch.Tensor, ...]:
        d = out_proj.weight.shape[0]
        w1, wo = first.weight.double(), out_proj.weight.double()
        weight = torch.cat([w1[:, :d], w1[:, d:] @ wo], 1).to(first.weight.dtype)
        bias = first.bias.double()
        if out_proj.bias is not None:
            bias = bias + w1[:, d:] @ out_proj.bias.double()
        bias = bias.to(first.bias.dtype)
        return (weight, bias, *bf16_copies(weight, bias))

    return derived(owner, "_folded_update", sources, fold)


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
    weight, bias, weight_bf16, bias_bf16 = folded
    d = x.shape[-1]
    dtype = torch.bfloat16 if cpu_bf16_inference(x, weight) else x.dtype
    inputs = x.new_empty((*x.shape[:-1], 2 * d), dtype=dtype)  # [B, L, 2D] = [x, context]
    inputs[..., :d] = x
    context = inputs[..., d:].unflatten(-1, contexts[0].shape[-2:])  # [B, L, H, Dh] view
    start = 0
    for part in contexts:
        context[:, start:start + part.shape[1]] = part
        start += part.shape[1]
    hidden = linear(inputs, weight, bias, lambda: (weight_bf16, bias_bf16))
    for layer in ffn[1:]:
        hidden = layer(hidden)
    return x + hidden


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
        self.Wqkv = Linear(embed_dim, 3 * embed_dim, bias=bias)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.ffn = _ffn(embed_dim)

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
        # The official layout interleaves q, k, v per channel: [..., H, Dh, 3].
        qkv = self.Wqkv(x).unflatten(-1, (self.num_heads, -1, 3))  # [B, N, H, Dh, 3]
        qkv = qkv.permute(4, 0, 2, 1, 3).contiguous()  # [3, B, H, N, Dh] in one copy
        encoding = encodings[0] if len(encodings) == 1 else torch.cat(encodings, -2)  # [2, B, 1, N, Dh]
        qk = apply_rotary(encoding, qkv[:2])  # q and k of every image at once: [2, B, H, N, Dh]
        contexts, start = [], 0
        for image_encoding, mask in zip(encodings, masks):
            stop = start + image_encoding.shape[-2]
            q, k = qk[:, :, :, start:stop].unbind(0)  # [B, H, Ni, Dh]
            context = attention(q, k, qkv[2, :, :, start:stop], mask)
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
        self.to_qk = Linear(embed_dim, embed_dim, bias=bias)
        self.to_v = Linear(embed_dim, embed_dim, bias=bias)
        self.to_out = Linear(embed_dim, embed_dim, bias=bias)
        self.ffn = _ffn(embed_dim)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, L, D] -> [B, H, L, Dh]

    def forward(
        self,
        x: torch.Tensor,
        m: int,
        mask01: Optional[torch.Tensor] = None,
        mask10: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """x: [B, M + N, D], the M tokens of image 0 then the N of image 1; mask01 (queries of 0,
        keys of 1) broadcastable to [B, H, M, N], mask10 to [B, H, N, M]. Returns [B, M + N, D]."""
        qk, v = self._heads(self.to_qk(x)), self._heads(self.to_v(x))  # [B, H, M + N, Dh]
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
