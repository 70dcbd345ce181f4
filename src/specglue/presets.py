"""Named speed presets, in the spirit of hloc's ``confs``: one documented combination of keypoint
budget, image size, matcher precision, exit and match thresholds each, on the measured speed-accuracy
frontier of ``benchmarks/frontier.py`` (docs/speed.md).

==============  ==============================================================================
``accurate``    the defaults: 2048 keypoints at 1024 px, fp32, the official exit thresholds
                (depth 0.95, width 0.99); what every number in the README without a preset
                name used
``fast``        the same features; the matcher in the machine's fast precision
                (:func:`matcher_precision`) with earlier exits (depth 0.9, width 0.95) and
                matches kept from a confidence of 0.3 (official: 0.1), which wins back the
                precision the earlier exits cost
``realtime``    for video: 512 keypoints at 640 px, the fast precision, exits 0.9 / 0.95
                (0.8 / 0.9 cost 6.6 points of sinus AUC@10: docs/speed.md), and on the CPU
                the ALIKED network compiled (the first frame of each size compiles: ~30 s on
                2 cores, kept on disk by inductor)
==============  ==============================================================================

The precision is chosen for the machine that runs, when a matcher is built:
CUDA -> fp16 autocast (``mp=True``); a CPU with native bf16 (AMX or AVX512-BF16) -> bf16
autocast (``mp=True``); other x86 CPUs -> dynamic int8 linear layers (``int8=True``, fbgemm);
elsewhere fp32. Emulated bf16 is never chosen: it ran at 0.24x fp32 on an AVX2 EPYC.

ALIKED's smaller variant ``aliked-t16`` is on no preset: its descriptors have 64 channels and
no LightGlue weights exist for them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Union

import torch

from .confs import DEFAULT_PRESET, MAX_KEYPOINTS, RESIZE
from .ops.cpu import HAS_INT8_LINEAR, native_bf16

@dataclass(frozen=True)
class Preset:
    """One named combination; ``conf`` values given by a caller override it."""

    name: str
    max_num_keypoints: int  # keypoints per image
    resize: Optional[int]  # px: long side images are shrunk to (None: never)
    fast_precision: bool  # the matcher in :func:`matcher_precision` instead of fp32
    depth_confidence: float  # LightGlue's early stop (-1: off)
    width_confidence: float  # LightGlue's point pruning (-1: off)
    filter_threshold: float  # LightGlue's match confidence threshold
    compile_extractor: bool  # compile ALIKED's dense network on the CPU (video: one size)

    def precision(self, device: Union[str, torch.device]) -> str:
        """The matcher's precision on ``device``."""
        return matcher_precision(device) if self.fast_precision else "fp32"

    def lightglue_conf(self, device: Union[str, torch.device]) -> Dict[str, Any]:
        """The :class:`specglue.LightGlue` options of this preset on ``device``."""
        return {**precision_conf(self.precision(device)), "depth_confidence": self.depth_confidence,
                "width_confidence": self.width_confidence, "filter_threshold": self.filter_threshold}

    def extractor_conf(self) -> Dict[str, Any]:
        """The extractor options of this preset (keypoint budget and image size)."""
        return {"max_num_keypoints": self.max_num_keypoints, "resize": self.resize}

    def describe(self, device: Union[str, torch.device]) -> str:
        """One line for logs and reports, e.g. ``fast: 2048 keypoints at 1024 px, int8, exits 0.9/0.95,
        filter 0.3``."""
        size = f"{self.resize} px" if self.resize else "native size"
        compiled = ", compiled extractor" if self.compile_extractor else ""
        return (f"{self.name}: {self.max_num_keypoints} keypoints at {size}, {self.precision(device)}, "
                f"exits {self.depth_confidence}/{self.width_confidence}, filter {self.filter_threshold}{compiled}")


def precision_conf(precision: str) -> Dict[str, bool]:
    """The :class:`specglue.LightGlue` options that run ``precision`` (fp32, fp16, bf16, int8)."""
    return {"mp": precision in ("fp16", "bf16"), "int8": precision == "int8"}


def matcher_precision(device: Union[str, torch.device]) -> str:
    """The fastest matcher precision that keeps the homography accuracy on ``device``: fp16 on
    CUDA, bf16 on a CPU that computes it natively, int8 linear layers on other CPUs with
    PyTorch's x86 quantized engine, else fp32."""
    kind = torch.device(device).type
    if kind == "cuda":
        return "fp16"
    if kind != "cpu":
        return "fp32"
    if native_bf16():
        return "bf16"
    return "int8" if HAS_INT8_LINEAR else "fp32"


#: the presets by name, in the order of ``confs.PRESET_NAMES`` (the CLI's choices; tested)
PRESETS: Dict[str, Preset] = {
    "accurate": Preset("accurate", MAX_KEYPOINTS, RESIZE, fast_precision=False, depth_confidence=0.95,
                       width_confidence=0.99, filter_threshold=0.1, compile_extractor=False),
    "fast": Preset("fast", MAX_KEYPOINTS, RESIZE, fast_precision=True, depth_confidence=0.9,
                   width_confidence=0.95, filter_threshold=0.3, compile_extractor=False),
    "realtime": Preset("realtime", 512, 640, fast_precision=True, depth_confidence=0.9,
                       width_confidence=0.95, filter_threshold=0.1, compile_extractor=True),
}


#: ``resize=FROM_PRESET``: the preset's image size (None there means "never resize")
FROM_PRESET = "preset"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(PRESETS)}") from None


def resolve_preset(preset: Union[str, Preset], max_num_keypoints: Optional[int] = None,
                   resize: Union[int, None, str] = FROM_PRESET) -> Preset:
    """The preset (a name or a :class:`Preset`) with the keypoint budget and size the caller
    gave (``max_num_keypoints=None`` and ``resize=FROM_PRESET`` keep the preset's)."""
    chosen = preset if isinstance(preset, Preset) else get_preset(preset)
    if max_num_keypoints is not None:
        chosen = dataclasses.replace(chosen, max_num_keypoints=int(max_num_keypoints))
    if resize != FROM_PRESET:
        chosen = dataclasses.replace(chosen, resize=resize)
    return chosen


__all__ = ["DEFAULT_PRESET", "FROM_PRESET", "PRESETS", "Preset", "get_preset", "matcher_precision", "precision_conf",
           "resolve_preset"]
