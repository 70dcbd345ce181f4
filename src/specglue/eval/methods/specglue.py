"""specglue's LightGlue in one specular mode (``specglue-off``, ``specglue-hard``, ...)."""

from __future__ import annotations

from typing import Any, Dict

import torch

from ...confs import SPECULAR_MODES
from ...model.lightglue import LightGlue
from ...storage import ImageFeatures
from ..cache import PairFeatures, Prediction
from .base import Method, MethodContext, lightglue_inputs, lightglue_prediction


class SpecGlueMethod(Method):
    """specglue's LightGlue in one specular mode; the masks of the pair are passed unless the
    mode is ``off``. The model can be shared between modes."""

    def __init__(self, model: LightGlue, mode: str, device: torch.device) -> None:
        if mode not in SPECULAR_MODES:
            raise ValueError(f"specular mode must be one of {SPECULAR_MODES}, got {mode!r}")
        self.model, self.mode, self.device = model, mode, device
        self.name = f"specglue-{mode}"
        self.uses_masks = mode != "off"
        self.n_layers = int(model.conf.n_layers)

    @torch.inference_mode()
    def match_views(self, image0: ImageFeatures, image1: ImageFeatures, view: str = "") -> Prediction:
        """Match image 0 with image 1 or a view of it (see :class:`PairFeatures.side1`)."""
        data = lightglue_inputs(image0, image1, self.device, masks=self.uses_masks)
        return lightglue_prediction(self.model(data, specular_mode=self.mode), view)

    def match(self, pair: PairFeatures) -> Prediction:
        return self.match_views(pair.image0, pair.image1)

    def description(self) -> Dict[str, Any]:
        return {**super().description(), "specular_mode": self.mode, "conf": self.model.conf.to_dict()}


def build(context: MethodContext, mode: str) -> SpecGlueMethod:
    """``specglue-<mode>`` with the official weights of ``context.features`` (or ``context.weights``)."""
    conf = {**context.lightglue_conf, **context.specglue_conf,
            **({"weights": context.weights} if context.weights else {})}
    model = context.shared("specglue", lambda: LightGlue(context.features, **conf).eval().to(context.device))
    return SpecGlueMethod(model, mode, context.device)


__all__ = ["SpecGlueMethod", "build"]
