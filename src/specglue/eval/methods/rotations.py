"""The official LightGlue, best of 4 rotations (``reference-rot4``).

The workaround the official maintainers recommend for in-plane rotation (LightGlue issues
#18, #126): rotate image 1 by 0, 90, 180 and 270 degrees, extract and match each, and keep the
rotation with the most matches. The three rotated views of image 1 are extracted in loop 1
(``pair.views``); their keypoints are mapped back to image 1 for scoring. ``time_s`` counts the
four matching calls; the three extra extractions are not in it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from ...geometry import rot90_transform
from ..cache import PairFeatures, Prediction
from .base import Method, MethodContext
from .official import OfficialLightGlueMethod, shared_reference


def rot90_view(k: int):
    """The view of image 1 turned by ``k`` counter-clockwise quarter turns."""

    def view(image: torch.Tensor, mask: Optional[np.ndarray]) -> Tuple[torch.Tensor, Optional[np.ndarray], np.ndarray]:
        A, _ = rot90_transform(image.shape[-1], image.shape[-2], k)  # image 1 -> view
        turned = torch.rot90(image, k, dims=(-2, -1)).contiguous()
        turned_mask = None if mask is None else np.ascontiguousarray(np.rot90(mask, k))
        return turned, turned_mask, np.linalg.inv(A)

    return view


class BestOfRotationsMethod(Method):
    """The official LightGlue on image 1 and on its 90/180/270-degree turns; the turn with the
    most matches wins (ties: the smallest turn)."""

    views = {f"rot{90 * k}": rot90_view(k) for k in (1, 2, 3)}

    def __init__(self, reference: OfficialLightGlueMethod) -> None:
        self.reference = reference
        self.name = "reference-rot4"
        self.n_layers = reference.n_layers

    def match(self, pair: PairFeatures) -> Prediction:
        candidates = [self.reference.match_views(pair.image0, pair.side1(v), v) for v in ("", *self.views)]
        return max(candidates, key=lambda p: p.num_matches)  # max keeps the first of equals

    def description(self) -> Dict[str, Any]:
        return {**self.reference.description(), "name": self.name, "views": sorted(self.views)}


def build(context: MethodContext) -> Optional[BestOfRotationsMethod]:
    reference = shared_reference(context)
    return None if reference is None else BestOfRotationsMethod(reference)


__all__ = ["BestOfRotationsMethod", "build", "rot90_view"]
