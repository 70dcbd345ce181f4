"""specglue: LightGlue sparse feature matching that understands specular-highlight masks."""

import logging

from .batching import pad_features
from .model.lightglue import LightGlue
from .pipeline import MatchResult, match_pair
from .video import FrameMatcher

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["FrameMatcher", "LightGlue", "MatchResult", "match_pair", "pad_features"]
__version__ = "0.1.0"
