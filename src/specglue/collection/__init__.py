"""From a photo collection or a video to a reconstruction, in hloc's file layouts and COLMAP.

The stages, each a module, each resumable and each also a CLI command:

- :mod:`~specglue.collection.sources`: a folder of images, a sequence of numbered frames or a
  video file, read in order;
- :mod:`~specglue.collection.extract`: features (+ per-keypoint specularity) into an hloc
  features file (``specglue extract``);
- :mod:`~specglue.collection.pairs`: which images to match (``specglue pairs``);
- :mod:`~specglue.collection.match`: the pairs matched into an hloc matches file
  (``specglue match-pairs``);
- :mod:`~specglue.collection.colmap`: a COLMAP database, verification, incremental or global
  mapping, the model's numbers and the checks of its cameras (``specglue colmap``; needs
  ``specglue[colmap]``);
- :mod:`~specglue.collection.reconstruct`: the whole chain (``specglue reconstruct``);
- :mod:`~specglue.collection.view`: pictures of a model, an interactive HTML page and a PNG
  (``specglue view``).

Under them: :mod:`specglue.storage` (hloc's HDF5 layouts, crash-safe part files) and
:mod:`~specglue.collection.engine` (this process or Ray workers, ``specglue[ray]``).
pycolmap and ray are imported only when used.
"""

from .colmap import check_cameras, map_database, summarize, write_database
from .engine import LocalEngine, RayEngine, make_engine
from .extract import ExtractionSettings, extract_features
from ..storage import ImageFeatures, names_to_pair, read_image_features, read_matches
from .match import MatchSettings, match_pairs
from .pairs import exhaustive_pairs, image_names, read_pairs, sequential_pairs, write_pairs
from .reconstruct import reconstruct
from .sources import ImageSource
from .view import plot_model, view_model, write_model_page


__all__ = [
    "ExtractionSettings",
    "ImageFeatures",
    "ImageSource",
    "LocalEngine",
    "MatchSettings",
    "RayEngine",
    "check_cameras",
    "exhaustive_pairs",
    "extract_features",
    "image_names",
    "make_engine",
    "map_database",
    "match_pairs",
    "names_to_pair",
    "plot_model",
    "read_image_features",
    "read_matches",
    "read_pairs",
    "reconstruct",
    "sequential_pairs",
    "summarize",
    "view_model",
    "write_database",
    "write_model_page",
    "write_pairs",
]
