"""Best of several in-plane turns of image 1 (``reference-rot4``, ``specglue-rot2``).

Image 1 is also turned by quarter turns, each turn is extracted (in loop 1, as ``pair.views``,
inside the turned region of interest) and matched, and the turn with the most matches wins
(ties: the first in the order given, image 1 itself first); its keypoints are mapped back to
image 1 for scoring. ``time_s`` counts every matching call; the extra
extractions are not in it.

- ``reference-rot4``: the official LightGlue at 0, 90, 180 and 270 degrees, the workaround
  the official maintainers recommend for in-plane rotation (LightGlue issues #18, #126):
  4 matching calls and 3 extra extractions.
- ``specglue-rot2``: specglue's LightGlue (``specular_mode`` off) at 0 and 180 degrees: 2
  calls and 1 extra extraction. With the rotation-aware weights, which match up to about 90
  degrees in one call, the two turns cover the whole circle.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ...geometry import rot90_transform
from ..cache import PairFeatures, Prediction
from . import specglue
from .base import Method, MethodContext
from .official import shared_reference


def rot90_view(k: int):
    """The view of image 1 turned by ``k`` counter-clockwise quarter turns."""

    def turn(array: Optional[np.ndarray]) -> Optional[np.ndarray]:
        return None if array is None else np.ascontiguousarray(np.rot90(array, k))

    def view(image: torch.Tensor, mask: Optional[np.ndarray], roi: Optional[np.ndarray]
             ) -> Tuple[torch.Tensor, Optional[np.ndarray], Optional[np.ndarray], np.ndarray]:
        A, _ = rot90_transform(image.shape[-1], image.shape[-2], k)  # image 1 -> view
        turned = torch.rot90(image, k, dims=(-2, -1)).contiguous()
        return turned, turn(mask), turn(roi), np.linalg.inv(A)

    return view


class BestOfTurnsMethod(Method):
    """``base`` on image 1 and on its turns by ``quarter_turns`` (counter-clockwise, 1..3); the
    turn with the most matches wins (ties: image 1 itself, then the order given). ``base``
    matches a view with ``match_views(image0, image1_view, view_name)``."""

    def __init__(self, base: Any, quarter_turns: Sequence[int], name: str) -> None:
        if not quarter_turns or len(set(quarter_turns)) < len(quarter_turns) or not set(quarter_turns) <= {1, 2, 3}:
            raise ValueError(f"quarter_turns must be distinct values among 1, 2, 3; got {quarter_turns!r}")
        self.base, self.name = base, name
        self.views = {f"rot{90 * k}": rot90_view(k) for k in quarter_turns}
        self.uses_masks = base.uses_masks
        self.n_layers = base.n_layers

    def match(self, pair: PairFeatures) -> Prediction:
        candidates = [self.base.match_views(pair.image0, pair.side1(v), v) for v in ("", *self.views)]
        return max(candidates, key=lambda p: p.num_matches)  # max keeps the first of equals

    def description(self) -> Dict[str, Any]:
        return {**self.base.description(), "name": self.name, "views": sorted(self.views)}


def build_reference_rot4(context: MethodContext) -> Optional[BestOfTurnsMethod]:
    reference = shared_reference(context)
    return None if reference is None else BestOfTurnsMethod(reference, (1, 2, 3), "reference-rot4")


def build_specglue_rot2(context: MethodContext) -> BestOfTurnsMethod:
    return BestOfTurnsMethod(specglue.build(context, mode="off"), (2,), "specglue-rot2")


__all__ = ["BestOfTurnsMethod", "build_reference_rot4", "build_specglue_rot2", "rot90_view"]
