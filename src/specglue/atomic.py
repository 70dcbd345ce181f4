"""Crash-safe file writes: every file specglue writes goes through a temporary file in the same
folder and a rename, so a reader sees the old file or the new one, never half of one, and a
failed write leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Union

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)``, then rename the temporary file onto ``path``; on failure the
    temporary file is removed and ``path`` is left as it was. The temporary name keeps the
    suffix of ``path`` (writers such as ``cv2.imwrite`` choose the format by it) and holds the
    process id (two processes never share one). Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
