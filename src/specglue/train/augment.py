"""Photometric augmentation for training, in the spirit of glue-factory's "lg" set.

With probability ``p`` an image gets, in this order: a random gamma, a hue / saturation /
value shift, a brightness / contrast change (darkening more likely than brightening, as
glue-factory's), then one degradation drawn among Gaussian blur, motion blur, sensor noise
and JPEG compression, and, sometimes, CLAHE. Blur and noise matter for endoscopy, whose
frames are small and blurry. Every draw comes from the ``numpy`` generator passed in, so an
item stays a pure function of its seed.
"""

from __future__ import annotations

import cv2
import numpy as np


def _motion_kernel(rng: np.random.Generator, size: int) -> np.ndarray:
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0
    angle = float(rng.uniform(0, 180))
    rotation = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size))
    return kernel / max(float(kernel.sum()), 1e-6)


def lg_augment(image: np.ndarray, rng: np.random.Generator, p: float = 0.95) -> np.ndarray:
    """One random photometric change of ``image`` ([H, W, 3] float in [0, 1]); float32 out."""
    out = image.astype(np.float32)
    if rng.random() >= p:
        return out
    out = np.clip(out, 0.0, 1.0) ** float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
    hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # H in [0, 360), S and V in [0, 1]
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-10, 10)) % 360.0
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.7, 1.3), 0.0, 1.0)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.8, 1.2), 0.0, 1.0)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    brightness, contrast = rng.uniform(-0.25, 0.1), float(np.exp(rng.uniform(np.log(0.7), np.log(1.3))))
    out = (out - out.mean()) * contrast + out.mean() + brightness
    out = np.clip(out, 0.0, 1.0)
    choice = rng.integers(5)
    if choice == 0:
        sigma = float(rng.uniform(0.5, 2.0))
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    elif choice == 1:
        out = cv2.filter2D(out, -1, _motion_kernel(rng, int(rng.choice([3, 5, 7, 9]))))
    elif choice == 2:
        out = out + rng.normal(0.0, rng.uniform(0.005, 0.04), size=out.shape).astype(np.float32)
    elif choice == 3:
        quality = int(rng.integers(30, 90))
        ok, data = cv2.imencode(".jpg", (np.clip(out, 0, 1) * 255).round().astype(np.uint8),
                                [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    # choice 4: no degradation
    if rng.random() < 0.2:
        lab = cv2.cvtColor((np.clip(out, 0, 1) * 255).round().astype(np.uint8), cv2.COLOR_RGB2LAB)
        clahe = cv2.createCLAHE(clipLimit=float(rng.uniform(1.0, 3.0)), tileGridSize=(8, 8))
        lab[..., 0] = clahe.apply(lab[..., 0])
        out = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).astype(np.float32) / 255.0
    return np.clip(out, 0.0, 1.0).astype(np.float32)


__all__ = ["lg_augment"]
