"""From a photo collection or a video to a reconstruction, in hloc's file layouts.

So far: :mod:`~specglue.collection.pairs` (which images to match: exhaustive, sequential
windows for video, or a pairs file), in hloc's pairs format (one ``name0 name1`` per line).
"""

from .pairs import exhaustive_pairs, image_names, read_pairs, sequential_pairs, write_pairs

__all__ = ["exhaustive_pairs", "image_names", "read_pairs", "sequential_pairs", "write_pairs"]
