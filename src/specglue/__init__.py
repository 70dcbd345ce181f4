"""specglue: LightGlue sparse feature matching that understands specular-highlight masks."""

import logging

from .model.lightglue import LightGlue

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["LightGlue"]
__version__ = "0.1.0"
