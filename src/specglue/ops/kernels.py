"""Matrix-product kernels for CPU inference, chosen by measurement on the machine that runs them.

Every product of the matcher has two implementations on the CPU:

* linear layers (and the similarity ``a @ b^T``): oneDNN's ``_linear_pointwise`` or PyTorch's
  ``F.linear`` / ``bmm`` (MKL on x86 builds);
* attention: blocked oneDNN products (scores for at most :data:`_SCORE_BLOCK` entries at a time,
  then softmax, then the values) or ``F.scaled_dot_product_attention``.

Both are fp32 with fp32 accumulation (bf16 under CPU autocast for attention); results differ only
by summation order (~1e-6 relative), so the matches are the same whichever runs. Which one is
faster depends on the CPU, not the vendor: on an AMD EPYC MKL's fp32 GEMM reached ~215 GFLOP/s
on 2 cores against ~500 for oneDNN; on an Intel Xeon with AMX both reach ~280 and SDPA beats the
blocked attention (203 vs 129 GFLOP/s). So each product runs the path measured faster on this
machine (:mod:`specglue.ops.choice`: ``"auto"``, or a pinned ``"onednn"`` / ``"pytorch"``).

The oneDNN path only applies to CPU tensors outside autograd (``torch.inference_mode``,
``torch.no_grad``, or nothing requiring grad), outside tracing, ONNX export and
``torch.compile``: everything else (training, CUDA, fp16, export) goes through ``F.linear`` and
``F.scaled_dot_product_attention``. Under CPU bf16 autocast (``LightGlue(mp=True)``) outside
autograd the linear layers run ``F.linear`` (oneDNN bf16, AMX where the CPU has it) on bf16
copies of their weights kept between calls (:class:`Linear`), and attention is chosen in bf16;
there, row counts and attention lengths are padded to a multiple of :data:`_BF16_ROWS` so that
oneDNN's per-shape kernels are made once, not for every pair that pruning shrinks differently.

Inside :func:`use_int8` (``LightGlue(int8=True)``), the transformer's linear layers run dynamic
int8 quantization on the CPU (``torch.ops.quantized.linear_dynamic``, fbgemm / x86: weights
quantized per output channel once and kept packed between calls, activations per tensor on
every call): the path for CPUs without native bf16, where it ran the layer's products 1.2-1.7x
faster than fp32 on an AVX2 EPYC. Attention, the assignment and the small heads stay fp32.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from contextvars import ContextVar
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .choice import kernel_mode, measured, size_bucket
from .cpu import HAS_INT8_LINEAR, HAS_ONEDNN_BF16, HAS_ONEDNN_LINEAR

# Attention scores are computed for at most this many (query, key) entries at a time (2 MiB of
# fp32): memory stays bounded whatever the keypoint count, and of the blocks tried (2^18 to
# 2^22 entries) this one gave the fastest forward at 512-2048 keypoints.
_SCORE_BLOCK = 1 << 19
# Under CPU bf16 the rows of products and the lengths of attention are padded to a multiple of
# this (padded keys masked, padded rows dropped): oneDNN makes (JIT-compiles) a kernel for every
# new shape, 3-10 ms each on the AMX Xeon, and pruning gives every pair and layer new keypoint
# counts, so a bf16 forward on new images took 1.5-2.5x as long as the same forward repeated; SDPA
# also runs 1.5-4x faster on multiples of its blocks than on odd lengths.
_BF16_ROWS = 64
# whether the linear layers that allow it run int8 (use_int8)
_INT8: ContextVar[bool] = ContextVar("specglue_int8", default=False)


def inference(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether an operation on ``tensors`` runs eagerly outside autograd (any device), where
    weights may be replaced by values derived from them (:func:`derived`)."""
    # Checked first: torch.compile and torch.export (ONNX export included) must not trace the
    # rest (a context variable); the legacy ONNX exporter traces.
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    return not (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors))


def _cpu_inference(tensors: Tuple[Optional[torch.Tensor], ...]) -> bool:
    """Whether an operation on ``tensors`` (the first one is the input) runs eagerly on the CPU
    outside autograd (``torch.inference_mode``, ``torch.no_grad``, or nothing requiring grad)."""
    return tensors[0].is_cpu and inference(*tensors)


def onednn_dtype(*tensors: Optional[torch.Tensor]) -> Optional[torch.dtype]:
    """The dtype in which an operation on ``tensors`` (the first one is the input) may take the
    oneDNN path: float32, bfloat16 under CPU bf16 autocast, or None where only PyTorch's
    kernels apply (the path is then not measured either)."""
    if not _cpu_inference(tensors):
        return None
    if not (HAS_ONEDNN_LINEAR and torch._C._get_mkldnn_enabled()) or kernel_mode() == "pytorch":
        return None
    if torch.is_autocast_enabled("cpu"):
        bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16 and HAS_ONEDNN_BF16
        return torch.bfloat16 if bf16 else None
    return torch.float32 if tensors[0].dtype == torch.float32 else None


@contextlib.contextmanager
def use_int8(enabled: bool = True) -> Iterator[None]:
    """Run the block's quantizable linear layers (:class:`Linear` with ``quantizable=True`` and
    :func:`derived_linear`) in dynamic int8 on the CPU, outside autograd, on fp32 inputs; a no-op
    elsewhere (CUDA, training, autocast, export) and where this torch build has no quantized
    CPU engine."""
    token = _INT8.set(enabled and HAS_INT8_LINEAR)
    try:
        yield
    finally:
        _INT8.reset(token)


def cpu_int8_inference(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether a quantizable linear layer on ``tensors`` (input first) runs int8 here."""
    return (_INT8.get() and tensors[0].dtype == torch.float32 and _cpu_inference(tensors)
            and not torch.is_autocast_enabled("cpu"))


def int8_packed(weight: torch.Tensor, bias: Optional[torch.Tensor]) -> Any:
    """weight [out, in] quantized to int8 per output channel (symmetric: scale max|w| / 127)
    and packed with the fp32 bias for ``torch.ops.quantized.linear_dynamic``."""
    scale = (weight.detach().abs().amax(1).double() / 127).clamp(min=1e-12)  # [out]
    with warnings.catch_warnings():
        # torch 2.13 marks quantized tensors deprecated; its dynamic int8 linear still needs one
        warnings.simplefilter("ignore", UserWarning)
        quantized = torch.quantize_per_channel(weight.detach().float(), scale, torch.zeros_like(scale, dtype=torch.long),
                                               0, torch.qint8)
    return torch.ops.quantized.linear_prepack(quantized, None if bias is None else bias.detach().float())


def cpu_bf16_inference(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether an operation on ``tensors`` runs under CPU bf16 autocast outside autograd (and
    outside tracing / compilation)."""
    return (_cpu_inference(tensors) and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


def _dispatch(key: str, onednn: Callable[[], torch.Tensor], pytorch: Callable[[], torch.Tensor]) -> torch.Tensor:
    return measured(key, {"onednn": onednn, "pytorch": pytorch}, {"onednn": "onednn", "pytorch": "pytorch"})


# ----------------------------------------------------------------------------------------
# The operations
# ----------------------------------------------------------------------------------------


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")


@functools.lru_cache(maxsize=4096)
def _linear_key(in_features: int, out_features: int, rows: int) -> str:
    return f"linear float32 {in_features}x{out_features} rows{size_bucket(rows)}"


def versions(tensors: Iterable[Optional[torch.Tensor]]) -> Optional[Tuple]:
    """What identifies the values of ``tensors`` (storage and version counter of each), or None
    where one is an inference tensor (created under ``torch.inference_mode``: it has no
    version counter, so a copy of it cannot be kept safely)."""
    key = []
    for t in tensors:
        if t is None:
            key.append(None)
        elif t.is_inference():
            return None
        else:
            key.append((t.data_ptr(), t._version))
    return tuple(key)


def derived(owner: nn.Module, name: str, sources: Tuple[Optional[torch.Tensor], ...],
            make: Callable[[], Any]) -> Any:
    """``make()``, a value computed from the tensors ``sources`` (e.g. weights in another
    precision), kept on ``owner`` as the plain attribute ``name`` (not in the state dict) and made
    again whenever a source changes (its version counter or storage). Sources created under
    ``torch.inference_mode`` have no version counter: the value is then made on every call."""
    return _kept(owner, name, versions(sources), make)


def _kept(owner: nn.Module, name: str, version: Optional[Tuple], make: Callable[[], Any]) -> Any:
    """:func:`derived` with the sources' :func:`versions` already read."""
    cached = owner.__dict__.get(name)
    if version is None or cached is None or cached[0] != version:
        with torch.no_grad():
            cached = (version, make())
        owner.__dict__[name] = cached
    return cached[1]


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
           bf16: Callable[[], Tuple[torch.Tensor, Optional[torch.Tensor]]],
           int8: Optional[Callable[[], Any]] = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` with the CPU kernel chosen by measurement. Under CPU bf16
    autocast outside autograd it runs on ``bf16()``, bf16 copies of weight and bias that the
    caller keeps between calls (autocast's own cast cache only keeps tensors recorded by
    autograd, so it would cast the fp32 weights again on every call: ~13 % of a bf16 forward on
    an AMX Xeon). Inside :func:`use_int8` a layer that gives ``int8()``, its packed int8 weights
    (:func:`int8_packed`, kept by the caller), runs dynamic int8."""
    if int8 is not None and cpu_int8_inference(x, weight, bias):
        # reduce_range: 7-bit activations, so that fbgemm's int16 sums cannot saturate on CPUs
        # without VNNI (PyTorch's dynamic quantization does the same)
        return torch.ops.quantized.linear_dynamic(x.contiguous(), int8(), True)
    if cpu_bf16_inference(x, weight, bias):
        rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
        if rows % _BF16_ROWS == 0:
            return F.linear(x, *bf16())
        flat = x.reshape(rows, x.shape[-1]).to(torch.bfloat16)
        out = F.linear(_bf16_rows(flat), *bf16())[:rows]  # [rows, out]
        return out.view(*x.shape[:-1], out.shape[-1])
    if onednn_dtype(x, weight, bias) != torch.float32 or not x.numel():
        return F.linear(x, weight, bias)
    key = _linear_key(weight.shape[1], weight.shape[0], x.numel() // x.shape[-1])
    return _dispatch(key, lambda: _onednn_linear(x, weight, bias), lambda: F.linear(x, weight, bias))


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _bf16_rows(t: torch.Tensor) -> torch.Tensor:
    """t [..., L, C] with zero rows appended up to a multiple of :data:`_BF16_ROWS` rows."""
    return F.pad(t, (0, 0, 0, _round_up(t.shape[-2], _BF16_ROWS) - t.shape[-2]))


def bf16_copies(weight: torch.Tensor, bias: Optional[torch.Tensor]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """weight and bias in bf16 (for :func:`linear`)."""
    return weight.to(torch.bfloat16), None if bias is None else bias.to(torch.bfloat16)


def derived_linear(owner: nn.Module, name: str, sources: Tuple[Optional[torch.Tensor], ...],
                   make: Callable[[], Tuple[torch.Tensor, Optional[torch.Tensor]]]
                   ) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """A linear layer for inference whose weight and bias, ``make()``, are computed from the
    tensors ``sources`` (e.g. several layers' weights stacked, or folded into one): kept on
    ``owner`` (:func:`derived`) with their bf16 copies and run by :func:`linear`, quantizable
    (its int8 weights made on first use inside :func:`use_int8`). None where a source was created
    under ``torch.inference_mode`` (no version counter: the weights would be made again on every
    call)."""
    version = versions(sources)
    if version is None:
        return None
    weight, bias, weight_bf16, bias_bf16 = _kept(owner, name, version, lambda: (
        *(made := make()), *bf16_copies(*made)))
    return lambda x: linear(x, weight, bias, lambda: (weight_bf16, bias_bf16),
                            lambda: _kept(owner, name + "_int8", version, lambda: int8_packed(weight, bias)))


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) whose CPU kernel is chosen by
    measurement (:func:`linear`); its bf16 copies for CPU bf16 autocast, and with
    ``quantizable=True`` its int8 weights for :func:`use_int8`, are kept between calls and made
    again when a parameter changes (:func:`derived`)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, quantizable: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(in_features, out_features, bias, **kwargs)
        self.quantizable = quantizable

    def _bf16_parameters(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        return derived(self, "_bf16_cache", (self.weight, self.bias), lambda: bf16_copies(self.weight, self.bias))

    def _int8_parameters(self) -> Any:
        return derived(self, "_int8_cache", (self.weight, self.bias), lambda: int8_packed(self.weight, self.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias, self._bf16_parameters,
                      self._int8_parameters if self.quantizable else None)


def _onednn_matmul_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out = a.new_empty((a.shape[0], a.shape[1], b.shape[1]))
    for i in range(a.shape[0]):
        out[i] = _onednn_linear(a[i], b[i].contiguous(), None)
    return out


def matmul_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [B, M, K] @ b[B, N, K]^T -> [B, M, N]."""
    m, n = a.shape[1], b.shape[1]
    if cpu_bf16_inference(a, b) and (m % _BF16_ROWS or n % _BF16_ROWS):  # see _BF16_ROWS
        return (_bf16_rows(a) @ _bf16_rows(b).transpose(-1, -2))[:, :m, :n]
    if onednn_dtype(a, b) != torch.float32 or not (a.numel() and b.numel()):
        return a @ b.transpose(-1, -2)
    key = f"matmul_nt float32 K{a.shape[-1]} m{size_bucket(a.shape[1])} n{size_bucket(b.shape[1])}"
    return _dispatch(key, lambda: _onednn_matmul_nt(a, b), lambda: a @ b.transpose(-1, -2))


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out if mask is None else out.nan_to_num()


def _onednn_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
                      dtype: torch.dtype) -> torch.Tensor:
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


def _bf16_padded(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor]
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """q, k, v and the mask of :func:`attention` with the query and key lengths padded to a
    multiple of :data:`_BF16_ROWS`: padded keys are masked out, padded queries attend to every
    key (their rows are dropped afterwards)."""
    lq, lk = q.shape[-2], k.shape[-2]
    pad_q, pad_k = _round_up(lq, _BF16_ROWS) - lq, _round_up(lk, _BF16_ROWS) - lk
    q, k, v = _bf16_rows(q), _bf16_rows(k), _bf16_rows(v)
    if mask is None and pad_k:
        mask = torch.ones((1, 1, 1, lk), dtype=torch.bool, device=q.device)
    if mask is not None:
        mask = mask.reshape((1,) * (4 - mask.dim()) + tuple(mask.shape))
        mask = mask.expand(*mask.shape[:-1], lk)  # [..., Lq or 1, Lk]
        keep, drop = (True, False) if mask.dtype == torch.bool else (0.0, -torch.inf)
        mask = F.pad(mask, (0, pad_k), value=drop)
        if mask.shape[-2] == lq and pad_q:
            mask = F.pad(mask, (0, 0, 0, pad_q), value=keep)
    return q, k, v, mask


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Scaled dot-product attention. q: [B, H, Lq, Dh], k, v: [B, H, Lk, Dh] -> [B, H, Lq, Dh].

    ``mask`` broadcastable to [B, H, Lq, Lk]: boolean (True = may attend) or additive float.
    A query whose keys are all masked gets a zero message instead of NaN. Under CPU bf16 the
    lengths are padded to a multiple of :data:`_BF16_ROWS` (padded keys masked).
    """
    if q.shape[-2] == 0 or k.shape[-2] == 0:
        return q.new_zeros((*q.shape[:-1], v.shape[-1]))
    lq = q.shape[-2]
    if cpu_bf16_inference(q, k, v) and (lq % _BF16_ROWS or k.shape[-2] % _BF16_ROWS):
        return _chosen_attention(*_bf16_padded(q, k, v, mask))[..., :lq, :]
    return _chosen_attention(q, k, v, mask)


def _chosen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor]
                      ) -> torch.Tensor:
    """:func:`attention` on the path chosen by measurement (oneDNN blocks or SDPA)."""
    dtype = onednn_dtype(q, k, v)
    if dtype is None:
        return _sdpa(q, k, v, mask)
    mask_kind = "none" if mask is None else ("bool" if mask.dtype == torch.bool else "float")
    key = (f"attention {str(dtype).replace('torch.', '')} B{q.shape[0]} H{q.shape[1]} Dh{q.shape[-1]} "
           f"q{size_bucket(q.shape[-2])} k{size_bucket(k.shape[-2])} mask={mask_kind}")
    return _dispatch(key, lambda: _onednn_attention(q, k, v, mask, dtype), lambda: _sdpa(q, k, v, mask))
