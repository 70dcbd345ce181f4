"""Reading images: the one loader every part of specglue uses (CLI, pipeline, evaluation).

Conventions: images are RGB ``uint8 [H, W, 3]`` as read, float ``[3, H, W]`` in [0, 1] for the
extractors; pixel ``(x, y)`` has its centre at integer coordinates, so resizing by ``s`` maps
``x' = (x + 0.5) * s - 0.5`` (:mod:`specglue.features.base` uses the same rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple, Union

import cv2
import numpy as np
import torch

ImageInput = Union[str, Path, np.ndarray, torch.Tensor]
PathLike = Union[str, Path]

#: image file suffixes read from folders (lower case)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff")


def decode_file(path: PathLike, name: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """The decoded pixels of an image file (``cv2.imdecode`` with ``flags``, BGR order).

    Decoding the bytes avoids ``cv2.imread``'s silent None and its non-ASCII path issues.

    Raises:
        FileNotFoundError: ``path`` is not a file; ValueError: it cannot be decoded. Both
        messages start with ``name``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such file {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    decoded = cv2.imdecode(data, flags) if data.size else None
    if decoded is None:
        raise ValueError(f"{name}: {path} is not a readable image (corrupt or unknown format)")
    return decoded


def load_image(image: ImageInput, name: str = "image") -> np.ndarray:
    """An image as RGB uint8 [H, W, 3] from a path, a numpy array or a tensor [C, H, W] in [0, 1].

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file when it is missing or not a
    readable image.
    """
    if isinstance(image, (str, Path)):
        return np.ascontiguousarray(decode_file(image, name)[:, :, ::-1])
    if isinstance(image, torch.Tensor):
        if image.ndim == 4 and image.shape[0] == 1:
            image = image[0]
        if image.ndim != 3 or image.shape[0] not in (1, 3) or not image.is_floating_point():
            raise ValueError(f"{name} must be a float tensor [C, H, W] in [0, 1] with C = 1 or 3, "
                             f"got {tuple(image.shape)} {image.dtype}")
        array = (image.detach().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{name} must be an RGB array [H, W, 3] or grey [H, W], got {image.shape}")
        if image.dtype != np.uint8:
            if not np.issubdtype(image.dtype, np.floating):
                raise ValueError(f"{name} must be uint8 or float in [0, 1], got {image.dtype}")
            image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
        return np.ascontiguousarray(image)
    raise TypeError(f"{name} must be a path, a numpy array or a torch tensor, got {type(image).__name__}")


def resize_max(image: np.ndarray, resize: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Shrink ``[H, W, C]`` so that its long side is at most ``resize`` px (``cv2.INTER_AREA``);
    smaller images are kept (hloc's ``resize_max``), as is every image when ``resize`` is None.

    Returns:
        ``(image, S)`` with ``S [3, 3]`` mapping pixels of the input to pixels of the output.

    Raises:
        ValueError: ``resize`` is not a positive number of pixels.
    """
    h, w = image.shape[:2]
    sx = sy = 1.0
    if resize is not None:
        if int(resize) <= 0:
            raise ValueError(f"resize must be a positive long side in px or None, got {resize!r}")
        scale = int(resize) / max(h, w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        if scale < 1 and (new_w, new_h) != (w, h):
            image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
            sx, sy = new_w / w, new_h / h
    return image, scale_matrix(sx, sy)


def scale_matrix(sx: float, sy: float) -> np.ndarray:
    """``S [3, 3]`` mapping pixels of an image to pixels of it resized by ``(sx, sy)``, about the
    pixel corners (``x' = (x + 0.5) * sx - 0.5``, the convention of :mod:`specglue.features.base`)."""
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` uint8 or float in [0, 1] -> ``[3, H, W]`` float32 in [0, 1]."""
    array = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float()


def list_images(root: PathLike) -> List[Path]:
    """Every image file (see :data:`IMAGE_SUFFIXES`) under ``root``, recursively, sorted.

    Raises:
        ValueError: the folder does not exist or holds no image.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist")
    images = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"no image ({', '.join(IMAGE_SUFFIXES)}) found under {root}")
    return images


__all__ = ["IMAGE_SUFFIXES", "decode_file", "ImageInput", "list_images", "load_image", "resize_max", "scale_matrix",
           "to_tensor"]
