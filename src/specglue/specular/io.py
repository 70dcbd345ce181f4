"""Read and write highlight masks as 8-bit PNG images (0 = background, 255 = highlight)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Union

import cv2
import numpy as np
import torch

from ..atomic import atomic_write
from ..images import decode_file

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


def read_mask(path: PathLike) -> np.ndarray:
    """Read a mask image; any non-zero pixel (in any channel) is True.

    Args:
        path: an image file OpenCV can decode (PNG, BMP, TIFF, JPEG, ...).

    Returns:
        Bool array ``[H, W]``.

    Raises:
        FileNotFoundError: ``path`` does not exist or is not a file.
        ValueError: the file cannot be decoded as an image.
    """
    mask = decode_file(path, "mask", cv2.IMREAD_UNCHANGED) != 0
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    return mask


def write_mask(path: PathLike, mask: Union[np.ndarray, torch.Tensor]) -> Path:
    """Write a mask as an 8-bit single-channel PNG (True/non-zero -> 255, else 0).

    Args:
        path: output file; must end in ``.png``. Parent folders are created.
        mask: ``[H, W]`` numpy array or torch tensor, bool or numeric (non-zero = True).

    Returns:
        The path written.

    Raises:
        TypeError: ``mask`` is neither a numpy array nor a torch tensor.
        ValueError: ``mask`` is not 2-D, or ``path`` does not end in ``.png``.
        OSError: the file could not be written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"mask path must end in .png (lossless), got {path}")
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy array or torch tensor [H, W], got {type(mask).__name__}")
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape [H, W], got {list(mask.shape)}")
    image = np.where(mask != 0, 255, 0).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode mask for {path}")
    try:
        atomic_write(path, lambda tmp: encoded.tofile(str(tmp)))
    except OSError as err:
        raise OSError(f"cannot write mask {path}: {err}") from err
    logger.debug("wrote mask %s (%d of %d pixels set)", path, int((image > 0).sum()), image.size)
    return path
