"""Optional dependencies: imported where they are used, with a message naming the extra.

The core install (``pip install specglue``) matches, detects highlights, runs the demo, the
evaluation and the collection commands up to the matches file, and builds the CLI; the extras
add::

    specglue[onnx]     onnx, onnxruntime   export-onnx and OnnxMatcher
    specglue[colmap]   pycolmap            specglue colmap / reconstruct (COLMAP database, mapping)
    specglue[ray]      ray                 --engine ray of extract and match-pairs
    specglue[train]    pyyaml, tensorboard specglue train (YAML configs, TensorBoard logs)
    specglue[dev]      the above and pytest
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingDependency(ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` saying which extra to install.

    Args:
        module: the importable name (``"pycolmap"``, ``"onnxruntime"``).
        extra: the specglue extra that provides it (``"colmap"``, ``"onnx"``).
        purpose: what needs it, for the message (``"ONNX export"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependency(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'specglue[{extra}]'"
        ) from err


__all__ = ["MissingDependency", "require"]
