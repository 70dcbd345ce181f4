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
blocked attention (203 vs 129 GFLOP/s). So in the default mode ``"auto"``, the first call of an
operation in a size bucket (shapes rounded up to a power of two) times both paths on that call's
own tensors and keeps the faster (oneDNN only where it beats PyTorch's path by 10 %: smaller gaps
are noise); choices are remembered in memory and in
``<cache>/kernels.json`` (``$SPECGLUE_CACHE`` or ``~/.cache/specglue``), keyed by CPU model,
torch version and thread count, so a process pays for a bucket once per machine (delete the file
to measure again, e.g. after timings taken on a loaded machine).

``"onednn"`` or ``"pytorch"`` pins a path (``LightGlue(kernels=...)``, :func:`use_kernels`, or
the environment variable ``SPECGLUE_KERNELS``, which applies wherever the mode is ``"auto"``).
The oneDNN path only applies to CPU tensors outside autograd (``torch.inference_mode``,
``torch.no_grad``, or nothing requiring grad), outside tracing, ONNX export and
``torch.compile``: everything else (training, CUDA, fp16, export) goes through ``F.linear`` and
``F.scaled_dot_product_attention``. Under CPU bf16 autocast (``LightGlue(mp=True)``) outside
autograd the linear layers run ``F.linear`` (oneDNN bf16, AMX where the CPU has it) on bf16
copies of their weights kept between calls (:class:`Linear`), and attention is chosen in bf16;
there, row counts and attention lengths are padded to a multiple of :data:`_BF16_ROWS` so that
oneDNN's per-shape kernels are made once, not for every pair that pruning shrinks differently.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import platform
import statistics
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_write_text

logger = logging.getLogger(__name__)

#: kernel modes: measure and keep the faster path, or pin one
KERNEL_MODES = ("auto", "onednn", "pytorch")
KERNELS_ENV = "SPECGLUE_KERNELS"

# the mode of the innermost use_kernels, the environment variable already applied; None outside
_MODE: ContextVar[Optional[str]] = ContextVar("specglue_kernels", default=None)
_HAS_ONEDNN_LINEAR = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_HAS_ONEDNN_BF16 = _HAS_ONEDNN_LINEAR and torch.ops.mkldnn._is_mkldnn_bf16_supported()

# Attention scores are computed for at most this many (query, key) entries at a time (2 MiB of
# fp32): memory stays bounded whatever the keypoint count, and of the blocks tried (2^18 to
# 2^22 entries) this one gave the fastest forward at 512-2048 keypoints.
_SCORE_BLOCK = 1 << 19
_TIMING_REPEATS = 5  # timed calls per path (after one untimed), interleaved; the median decides
# Another path replaces the stock PyTorch one only when it is at least this much faster: on the
# AMX Xeon, near-ties (1-2 %) measured in favour of oneDNN's linear layers made the whole forward
# 5-12 % slower than PyTorch's kernels throughout (benchmarks/speed.py, 256-2048 keypoints).
_MIN_GAIN = 0.10
_SMALLEST_BUCKET = 64
# Under CPU bf16 the rows of products and the lengths of attention are padded to a multiple of
# this (padded keys masked, padded rows dropped): oneDNN makes (JIT-compiles) a kernel for every
# new shape, 3-10 ms each on the AMX Xeon, and pruning gives every pair and layer new keypoint
# counts, so a bf16 forward on new images took 1.5-2.5x as long as the same forward repeated; SDPA
# also runs 1.5-4x faster on multiples of its blocks than on odd lengths.
_BF16_ROWS = 64


def _check_mode(mode: str, source: str) -> str:
    if mode not in KERNEL_MODES:
        raise ValueError(f"{source} must be one of {KERNEL_MODES}, got {mode!r}")
    return mode


def _with_environment(mode: str) -> str:
    """``mode``, where it is ``"auto"`` the mode pinned by ``$SPECGLUE_KERNELS`` if set."""
    if mode == "auto":
        pinned = os.environ.get(KERNELS_ENV)
        if pinned:
            return _check_mode(pinned, f"${KERNELS_ENV}")
    return mode


@contextlib.contextmanager
def use_kernels(mode: str = "auto") -> Iterator[None]:
    """Run the block with the kernel ``mode``: ``"auto"`` (measure), ``"onednn"`` or ``"pytorch"``.
    For ``"auto"`` the environment variable ``SPECGLUE_KERNELS`` is read once, on entry (reading
    it per operation cost ~1.5 us, a few % of a forward at 256 keypoints)."""
    token = _MODE.set(_with_environment(_check_mode(mode, "kernels")))
    try:
        yield
    finally:
        _MODE.reset(token)


def kernel_mode() -> str:
    """The mode in force: the innermost :func:`use_kernels`, where that is ``"auto"`` the
    environment variable ``SPECGLUE_KERNELS`` if set."""
    mode = _MODE.get()
    return _with_environment("auto") if mode is None else mode


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
    if not (_HAS_ONEDNN_LINEAR and torch._C._get_mkldnn_enabled()) or kernel_mode() == "pytorch":
        return None
    if torch.is_autocast_enabled("cpu"):
        bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16 and _HAS_ONEDNN_BF16
        return torch.bfloat16 if bf16 else None
    return torch.float32 if tensors[0].dtype == torch.float32 else None


def cpu_bf16_inference(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether an operation on ``tensors`` runs under CPU bf16 autocast outside autograd (and
    outside tracing / compilation)."""
    return (_cpu_inference(tensors) and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


# ----------------------------------------------------------------------------------------
# Choice by measurement
# ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether the CPU computes bf16 products natively (AMX-BF16 or AVX512-BF16 in
    ``/proc/cpuinfo``); elsewhere bf16 is emulated and slower than fp32."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return bool(flags & {"amx_bf16", "avx512_bf16"}) and _HAS_ONEDNN_BF16
    except OSError:
        pass
    return False


def machine_key() -> str:
    """What a timing depends on besides the shapes: CPU model, torch version, threads."""
    return f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def size_bucket(n: int) -> int:
    """``n`` rounded up to a power of two (at least 64): the sizes that share a choice."""
    return max(_SMALLEST_BUCKET, 1 << (max(n, 1) - 1).bit_length())


def choices_file() -> Path:
    """The JSON file the choices are remembered in."""
    from ..weights import cache_dir

    return cache_dir() / "kernels.json"


class KernelChoices:
    """The measured choice of each operation bucket on this machine, in memory and on disk.

    ``entries`` maps an operation key (e.g. ``"attention float32 B1 H4 Dh64 q512 k512 mask=none"``)
    to ``{"path": name of the fastest path, "ms": {path: median ms}}``.
    """

    def __init__(self) -> None:
        self.entries: Dict[str, Dict] = {}
        self._loaded_for: Optional[int] = None
        self._write_failed = False

    def _load(self) -> None:
        # cheap on every call: the file is read again only when the thread count changes (or
        # after clear(), e.g. when $SPECGLUE_CACHE was changed)
        key = torch.get_num_threads()
        if self._loaded_for == key:
            return
        self._loaded_for, self.entries = key, {}
        path = choices_file()
        try:
            stored = json.loads(path.read_text())
            entries = stored.get(machine_key(), {}) if isinstance(stored, dict) else {}
            self.entries = {k: v for k, v in entries.items() if isinstance(v, dict) and "path" in v}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as error:
            logger.warning("Kernel choices %s unreadable (%s): measuring again", path, error)

    def _save(self) -> None:
        path = choices_file()
        try:
            try:
                stored = json.loads(path.read_text())
                stored = stored if isinstance(stored, dict) else {}
            except (OSError, ValueError):
                stored = {}
            # merged: another process may have measured other buckets meanwhile
            stored[machine_key()] = {**stored.get(machine_key(), {}), **self.entries}
            atomic_write_text(path, json.dumps(stored, indent=1, sort_keys=True))
        except OSError as error:
            if not self._write_failed:
                logger.warning("Kernel choices not saved to %s (%s): kept for this process", path, error)
            self._write_failed = True

    def clear(self) -> None:
        """Forget the choices of this process (the file stays; it is read again on next use)."""
        self.entries, self._loaded_for = {}, None

    def run(self, key: str, paths: Dict[str, Callable[[], Any]], repeats: int = _TIMING_REPEATS,
            default: Optional[str] = None) -> Any:
        """The output of the chosen path for ``key``; the first time, every path is timed on
        this call (one untimed call each, then ``repeats`` interleaved ones) and the fastest kept,
        except that a path must beat ``default`` (the stock path) by :data:`_MIN_GAIN` to be
        chosen over it."""
        self._load()
        entry = self.entries.get(key)
        if entry is not None and entry["path"] in paths:
            return paths[entry["path"]]()
        times: Dict[str, list] = {name: [] for name in paths}
        outputs = {name: run() for name, run in paths.items()}
        for _ in range(repeats):
            for name, run in paths.items():
                start = time.perf_counter()
                outputs[name] = run()
                times[name].append((time.perf_counter() - start) * 1e3)
        ms = {name: round(statistics.median(t), 4) for name, t in times.items()}
        best = min(ms, key=ms.get)
        if default in ms and ms[best] > (1 - _MIN_GAIN) * ms[default]:
            best = default
        self.entries[key] = {"path": best, "ms": ms}
        logger.info("Kernels: %s -> %s (%s)", key, best, ", ".join(f"{n} {t:.3f} ms" for n, t in ms.items()))
        self._save()
        return outputs[best]


#: the process-wide choices
CHOICES = KernelChoices()


def measured(key: str, paths: Dict[str, Callable[[], Any]], pinned: Dict[str, str],
             repeats: int = _TIMING_REPEATS) -> Any:
    """Run the path of ``paths`` measured fastest for ``key`` (mode ``"auto"``; the path of
    ``pinned["pytorch"]``, the stock one, unless another beats it by :data:`_MIN_GAIN`), or
    ``paths[pinned[mode]]`` when the mode is pinned to ``"onednn"`` or ``"pytorch"``."""
    mode = kernel_mode()
    if mode != "auto":
        return paths[pinned[mode]]()
    return CHOICES.run(key, paths, repeats, default=pinned["pytorch"])


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
           bf16: Callable[[], Tuple[torch.Tensor, Optional[torch.Tensor]]]) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` with the CPU kernel chosen by measurement. Under CPU bf16
    autocast outside autograd it runs on ``bf16()``, bf16 copies of weight and bias that the
    caller keeps between calls (autocast's own cast cache only keeps tensors recorded by
    autograd, so it would cast the fp32 weights again on every call: ~13 % of a bf16 forward on
    an AMX Xeon)."""
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
    ``owner`` (:func:`derived`) with their bf16 copies and run by :func:`linear`. None where a
    source was created under ``torch.inference_mode`` (no version counter: the weights would be
    made again on every call)."""
    version = versions(sources)
    if version is None:
        return None
    weight, bias, weight_bf16, bias_bf16 = _kept(owner, name, version, lambda: (
        *(made := make()), *bf16_copies(*made)))
    return lambda x: linear(x, weight, bias, lambda: (weight_bf16, bias_bf16))


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) whose CPU kernel is chosen by
    measurement (:func:`linear`); its bf16 copies for CPU bf16 autocast are kept between calls
    and made again when a parameter changes (:func:`derived`)."""

    def _bf16_parameters(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        return derived(self, "_bf16_cache", (self.weight, self.bias), lambda: bf16_copies(self.weight, self.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias, self._bf16_parameters)


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
