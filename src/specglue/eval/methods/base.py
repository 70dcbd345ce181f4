"""What every evaluated matcher is: :class:`Method`, its build context, views of image 1."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from ...storage import ImageFeatures
from ..cache import PairFeatures, Prediction

#: a view of image 1: ``(image [3, H, W], mask [H, W] or None, roi [H, W] or None) -> (view
#: image, view mask, view roi, to_image1 [3, 3])``, the last mapping pixels of the view to
#: pixels of image 1
View = Callable[[torch.Tensor, Optional[np.ndarray], Optional[np.ndarray]],
                Tuple[torch.Tensor, Optional[np.ndarray], Optional[np.ndarray], np.ndarray]]


class Method:
    """A matcher under evaluation: ``match(pair) -> Prediction`` on cached features.

    ``views`` names extra views of image 1 the method needs; loop 1 extracts their features
    into the feature cache (``pair.views``) before matching.
    """

    name: str = "method"
    #: whether the method reads the specular masks
    uses_masks: bool = False
    #: transformer layers (bins of the stop histogram), 0 for matchers without layers
    n_layers: int = 0
    views: Mapping[str, View] = {}

    def match(self, pair: PairFeatures) -> Prediction:
        raise NotImplementedError

    def description(self) -> Dict[str, Any]:
        return {"name": self.name, "uses_masks": self.uses_masks, "n_layers": self.n_layers}


@dataclass
class MethodContext:
    """What a method factory builds from: the feature preset, device and settings, and models
    shared between methods (one specglue model serves every specular mode)."""

    features: str
    device: torch.device = torch.device("cpu")
    lightglue_conf: Dict[str, Any] = field(default_factory=dict)
    mnn_ratio: float = 0.8
    models: Dict[str, Any] = field(default_factory=dict)
    weights: Optional[str] = None  # specglue-* methods: a checkpoint instead of the official weights
    specglue_conf: Dict[str, Any] = field(default_factory=dict)  # specglue-* methods only (a preset's)

    def shared(self, key: str, build: Callable[[], Any]) -> Any:
        """The model stored under ``key``, built on first use."""
        if key not in self.models:
            self.models[key] = build()
        return self.models[key]


def lightglue_inputs(image0: ImageFeatures, image1: ImageFeatures, device: torch.device,
                     masks: bool) -> Dict[str, Dict[str, torch.Tensor]]:
    """The LightGlue input dict (batch of one) of two images' features."""
    data = {}
    for key, side in (("image0", image0), ("image1", image1)):
        view = side.to_view(device)
        if masks and side.mask is not None:
            view["specular_mask"] = torch.from_numpy(np.asarray(side.mask, dtype=bool))[None].to(device)
        data[key] = view
    return data


def lightglue_prediction(out: Mapping[str, Any], view: str = "") -> Prediction:
    """The :class:`Prediction` of a LightGlue output dict (batch of one)."""
    matches = out["matches"][0].detach().cpu().numpy().astype(np.int64).reshape(-1, 2)
    scores = out["scores"][0].detach().float().cpu().numpy().reshape(-1)
    stop = out.get("stop", -1)
    return Prediction(matches, scores, stop=int(stop) if stop is not None else -1, view=view)


__all__ = ["Method", "MethodContext", "View", "lightglue_inputs", "lightglue_prediction"]
