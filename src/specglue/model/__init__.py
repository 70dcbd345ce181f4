"""The LightGlue matcher, one concept per file."""

from .attention import CrossBlock, SelfBlock, TransformerLayer
from .encoding import LearnableFourierPositionalEncoding
from .heads import MatchAssignment, TokenConfidence, filter_matches
from .lightglue import LightGlue

__all__ = [
    "CrossBlock",
    "LearnableFourierPositionalEncoding",
    "LightGlue",
    "MatchAssignment",
    "SelfBlock",
    "TokenConfidence",
    "TransformerLayer",
    "filter_matches",
]
