"""Matrix-product kernels: oneDNN on the CPU for fp32 inference, PyTorch's defaults elsewhere.

PyTorch's CPU ``nn.Linear`` and ``bmm`` call MKL, whose fp32 GEMM does not use AVX-512 on every
CPU (on this project's AMD EPYC it runs at ~215 GFLOP/s on 2 cores); oneDNN, which PyTorch
ships too, reaches ~500 GFLOP/s on the same cores (``benchmarks/speed.py --kernels``). Both
are fp32 with fp32 accumulation; results differ only by summation order (~1e-6 relative).

The oneDNN path is taken for float32 CPU tensors outside autograd (``torch.inference_mode``,
``torch.no_grad``, or nothing requiring grad), outside tracing and ``torch.compile``, and while
:func:`use_onednn` allows it (the default). Under CPU bf16 autocast (``LightGlue(mp=True)``)
the attention runs in bf16 through the same blocked oneDNN path, about twice as fast as
PyTorch's bf16 SDPA kernel here; the linear layers are left to autocast (PyTorch already calls
oneDNN for bf16). Everything else (training, CUDA, fp16, ONNX export) goes through
``F.linear`` and ``F.scaled_dot_product_attention``.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

_ONEDNN_ALLOWED: ContextVar[bool] = ContextVar("specglue_onednn", default=True)
_HAS_ONEDNN_LINEAR = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_HAS_ONEDNN_BF16 = _HAS_ONEDNN_LINEAR and torch.ops.mkldnn._is_mkldnn_bf16_supported()

# Attention scores are computed for at most this many (query, key) entries at a time (2 MiB of
# fp32): memory stays bounded whatever the keypoint count, and of the blocks tried (2^18 to
# 2^22 entries) this one gave the fastest forward at 512-2048 keypoints.
_SCORE_BLOCK = 1 << 19


@contextlib.contextmanager
def use_onednn(enabled: bool = True) -> Iterator[None]:
    """Allow (default) or forbid the oneDNN CPU path inside the block."""
    token = _ONEDNN_ALLOWED.set(enabled)
    try:
        yield
    finally:
        _ONEDNN_ALLOWED.reset(token)


def onednn_dtype(*tensors: Optional[torch.Tensor]) -> Optional[torch.dtype]:
    """The dtype in which an operation on ``tensors`` (the first one is the input) takes the
    oneDNN path: float32, bfloat16 under CPU bf16 autocast, or None for PyTorch's kernels."""
    # Checked first: torch.compile must not trace the rest (a context variable).
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return None
    if not (_HAS_ONEDNN_LINEAR and _ONEDNN_ALLOWED.get() and torch.backends.mkldnn.enabled):
        return None
    x = tensors[0]
    if x.device.type != "cpu":
        return None
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return None
    if torch.is_autocast_enabled("cpu"):
        bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16 and _HAS_ONEDNN_BF16
        return torch.bfloat16 if bf16 else None
    return torch.float32 if x.dtype == torch.float32 else None


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) that uses oneDNN when it applies."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if onednn_dtype(x, self.weight, self.bias) == torch.float32 and x.numel():
            return _onednn_linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)


def matmul_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [B, M, K] @ b[B, N, K]^T -> [B, M, N]."""
    if not (onednn_dtype(a, b) == torch.float32 and a.numel() and b.numel()):
        return a @ b.transpose(-1, -2)
    out = a.new_empty((a.shape[0], a.shape[1], b.shape[1]))
    for i in range(a.shape[0]):
        out[i] = _onednn_linear(a[i], b[i].contiguous(), None)
    return out


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Scaled dot-product attention. q: [B, H, Lq, Dh], k, v: [B, H, Lk, Dh] -> [B, H, Lq, Dh].

    ``mask`` broadcastable to [B, H, Lq, Lk]: boolean (True = may attend) or additive float.
    A query whose keys are all masked gets a zero message instead of NaN.
    """
    if q.shape[-2] == 0 or k.shape[-2] == 0:
        return q.new_zeros((*q.shape[:-1], v.shape[-1]))
    dtype = onednn_dtype(q, k, v)
    if dtype is None:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out if mask is None else out.nan_to_num()
    if mask is not None and mask.dim() < 4:
        mask = mask.reshape((1,) * (4 - mask.dim()) + tuple(mask.shape))
    q = q.to(dtype) * q.shape[-1] ** -0.5
    k = k.to(dtype).contiguous()
    v_t = v.to(dtype).transpose(-1, -2).contiguous()  # [B, H, Dh, Lk]: oneDNN's weight layout
    out = q.new_empty((*q.shape[:-1], v.shape[-1]))
    rows = max(1, _SCORE_BLOCK // k.shape[-2])
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            head_mask = None if mask is None else mask[b % mask.shape[0], h % mask.shape[1]]
            for start in range(0, q.shape[-2], rows):
                stop = start + rows
                scores = _onednn_linear(q[b, h, start:stop], k[b, h], None)  # [rows, Lk]
                if head_mask is not None:
                    block_mask = head_mask[start:stop] if head_mask.shape[0] > 1 else head_mask
                    if block_mask.dtype == torch.bool:
                        scores.masked_fill_(~block_mask, -torch.inf)
                    else:
                        scores += block_mask
                out[b, h, start:stop] = _onednn_linear(scores.softmax(-1), v_t[b, h], None)
    return out if mask is None else out.nan_to_num()
