"""The choice between two implementations of one operation, by measurement on the machine that
runs it, remembered per machine.

In the mode ``"auto"`` (the default), the first call of an operation in a size bucket (shapes
rounded up to a power of two) times every path on that call's own tensors and keeps the faster;
the stock PyTorch path is replaced only by one at least 10 % faster (smaller gaps are noise).
Choices are remembered in memory and in ``<cache>/kernels.json`` (``$SPECGLUE_CACHE`` or
``~/.cache/specglue``), keyed by CPU model, torch version and thread count, so a process pays for
a bucket once per machine (delete the file to measure again, e.g. after timings taken on a
loaded machine). ``"onednn"`` or ``"pytorch"`` pins a path (``LightGlue(kernels=...)``,
:func:`use_kernels`, or the environment variable ``SPECGLUE_KERNELS``, which applies wherever the
mode is ``"auto"``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import torch

from ..atomic import atomic_write_text
from .cpu import cpu_model

logger = logging.getLogger(__name__)

#: kernel modes: measure and keep the faster path, or pin one
KERNEL_MODES = ("auto", "onednn", "pytorch")
KERNELS_ENV = "SPECGLUE_KERNELS"

# the mode of the innermost use_kernels, the environment variable already applied; None outside
_MODE: ContextVar[Optional[str]] = ContextVar("specglue_kernels", default=None)
_TIMING_REPEATS = 5  # timed calls per path (after one untimed), interleaved; the median decides
# Another path replaces the stock PyTorch one only when it is at least this much faster: on the
# AMX Xeon, near-ties (1-2 %) measured in favour of oneDNN's linear layers made the whole forward
# 5-12 % slower than PyTorch's kernels throughout (benchmarks/speed.py, 256-2048 keypoints).
_MIN_GAIN = 0.10
_SMALLEST_BUCKET = 64


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


__all__ = ["CHOICES", "KERNEL_MODES", "KERNELS_ENV", "KernelChoices", "choices_file", "kernel_mode", "machine_key",
           "measured", "size_bucket", "use_kernels"]
