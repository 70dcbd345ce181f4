"""What this CPU and torch build can do: the CPU's model name, oneDNN's fused kernels, native
bf16, int8 linear layers.

Every speed figure specglue prints names :func:`cpu_model`; :func:`native_bf16` decides where
bf16 pays (:mod:`specglue.presets`), since emulated bf16 is slower than fp32.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

#: oneDNN's fused linear is in this torch build; and it computes bf16 on this CPU
HAS_ONEDNN_LINEAR = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
HAS_ONEDNN_BF16 = HAS_ONEDNN_LINEAR and torch.ops.mkldnn._is_mkldnn_bf16_supported()
#: dynamic int8 linear layers (fbgemm / x86 engine) are in this torch build
HAS_INT8_LINEAR = hasattr(torch.ops.quantized, "linear_dynamic") and bool(
    {"x86", "fbgemm"} & set(torch.backends.quantized.supported_engines))


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
                return bool(flags & {"amx_bf16", "avx512_bf16"}) and HAS_ONEDNN_BF16
    except OSError:
        pass
    return False


__all__ = ["HAS_INT8_LINEAR", "HAS_ONEDNN_BF16", "HAS_ONEDNN_LINEAR", "cpu_model", "native_bf16"]
