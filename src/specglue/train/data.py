"""Training pairs from any folder of images: a photo and its random homography warp,
photometric changes, and synthetic specular highlights with their masks.

Each item is a pure function of ``(conf.seed, index)``: the same index gives the same pair in
every process and after a resume. Image ``index % len(images)`` is resized to ``conf.size``;
the warp is drawn by :func:`specglue.geometry.sample_homography` with its ranges scaled by
``conf.difficulty`` (0.5 = the evaluation's defaults, 1 = twice as hard) and in-plane rotation
up to ``conf.max_angle_deg`` (180 for rotation-aware training); the warped view gets the
evaluation's photometric changes; with probability ``conf.specular_probability`` both views
get highlights (:func:`specglue.specular.synthesize_pair`, a placement drawn from
``conf.placements``: ``camera_fixed`` as in endoscopy, ``independent`` as when the light moves).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from .. import specular
from ..eval.benchmarks.homography import photometric_augment
from ..geometry import DEFAULT_HOMOGRAPHY_SAMPLING, sample_homography, warp_image
from ..images import list_images, load_image, to_tensor

PathLike = Union[str, Path]


@dataclass(frozen=True)
class HomographyDataConf:
    size: Tuple[int, int] = (320, 240)  # (W, H) of both views
    difficulty: float = 0.5  # scales scale / perspective / translation ranges; 0.5 = eval defaults
    max_angle_deg: float = 25.0  # in-plane rotation drawn in [-a, a]; 180 for rotation-aware
    photometric: bool = True  # brightness, contrast, gamma, noise on the warped view
    specular_probability: float = 0.8  # share of pairs with synthetic highlights
    placements: Tuple[str, ...] = ("camera_fixed", "independent")
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.difficulty <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {self.difficulty}")
        if not 0.0 <= self.specular_probability <= 1.0:
            raise ValueError(f"specular_probability must be in [0, 1], got {self.specular_probability}")
        unknown = set(self.placements) - {"camera_fixed", "independent", "surface_fixed"}
        if unknown or not self.placements:
            raise ValueError(f"placements must be among camera_fixed, independent, surface_fixed; got {self.placements}")


class HomographyPairs(torch.utils.data.Dataset):
    """Pairs made from ``images`` (a folder, searched recursively, or a list of files).

    Items: ``image0`` / ``image1`` [3, H, W] float in [0, 1], ``H_0to1`` [3, 3] float32,
    ``specular_mask0`` / ``specular_mask1`` [H, W] bool (all False without highlights),
    ``index`` (int).

    Args:
        length: items per epoch (default: one per image).
    """

    def __init__(self, images: Union[PathLike, Sequence[PathLike]], conf: HomographyDataConf = HomographyDataConf(),
                 length: int = 0) -> None:
        self.files: List[Path] = (list_images(images) if isinstance(images, (str, Path))
                                  else [Path(p) for p in images])
        if not self.files:
            raise ValueError("HomographyPairs needs at least one image")
        self.conf = conf
        self.length = int(length) or len(self.files)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        conf = self.conf
        rng = np.random.default_rng([conf.seed, int(index)])
        width, height = conf.size
        rgb = load_image(self.files[index % len(self.files)])
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        factor = 2.0 * conf.difficulty
        low, high = DEFAULT_HOMOGRAPHY_SAMPLING["scale_range"]
        H = sample_homography(height, width, rng=rng, max_angle_deg=conf.max_angle_deg,
                              scale_range=(low ** factor, high ** factor),
                              perspective=DEFAULT_HOMOGRAPHY_SAMPLING["perspective"] * factor,
                              translation=DEFAULT_HOMOGRAPHY_SAMPLING["translation"] * factor)
        image0 = rgb.astype(np.float32) / 255.0
        image1 = warp_image(image0, H)
        if conf.photometric:
            image1 = photometric_augment(image1, rng)
        t0, t1 = to_tensor(image0), to_tensor(image1)
        mask0 = torch.zeros(height, width, dtype=torch.bool)
        mask1 = torch.zeros(height, width, dtype=torch.bool)
        if rng.random() < conf.specular_probability:
            placement = str(rng.choice(conf.placements))
            homography = torch.from_numpy(H).float() if placement == "surface_fixed" else None
            t0, mask0, t1, mask1 = specular.synthesize_pair(t0, t1, homography, placement=placement,
                                                            seed=int(rng.integers(2 ** 31 - 1)))
        return {"image0": t0, "image1": t1, "H_0to1": torch.from_numpy(H).float(),
                "specular_mask0": mask0, "specular_mask1": mask1, "index": int(index)}


__all__ = ["HomographyDataConf", "HomographyPairs"]
