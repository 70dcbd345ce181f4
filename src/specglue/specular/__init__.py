"""Specular highlights: detection, synthesis and mask files."""

from .detect import DEFAULT_METHOD, detect
from .io import read_mask, write_mask
from .sample import dilate_mask, sample_mask
from .synthesize import Highlight, SyntheticPair, render_alpha, sample_highlights, synthesize, synthesize_pair

__all__ = [
    "DEFAULT_METHOD",
    "Highlight",
    "SyntheticPair",
    "detect",
    "dilate_mask",
    "read_mask",
    "render_alpha",
    "sample_highlights",
    "sample_mask",
    "synthesize",
    "synthesize_pair",
    "write_mask",
]
