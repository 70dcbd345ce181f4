"""Every file of features, matches, predictions and training caches goes through here.

- :mod:`~specglue.storage.h5`: opening with errors that name the file, the settings a file was
  made with and the one guard that compares them, listing and copying groups;
- :mod:`~specglue.storage.hloc`: hloc's features and matches layouts and :class:`ImageFeatures`,
  the features of one image; collections write them, and the evaluation stores its pairs'
  images in the same per-image layout;
- :mod:`~specglue.storage.journal`: crash-safe, resumable output through part files, for
  collections and the evaluation's caches.

Single files (tables, figures, checkpoints) are written with :func:`specglue.atomic.atomic_write`.
"""

from .h5 import (check_settings, check_writable, copy_group, leaf_groups, open_h5, read_settings,
                 settings_changes, write_settings)
from .hloc import (ImageFeatures, find_pair, names_to_pair, pair_keys, read_image_features, read_matches,
                   write_image_features, write_pair_matches)
from .journal import PartJournal

__all__ = [
    "ImageFeatures",
    "PartJournal",
    "check_settings",
    "check_writable",
    "copy_group",
    "find_pair",
    "leaf_groups",
    "names_to_pair",
    "open_h5",
    "pair_keys",
    "read_image_features",
    "read_matches",
    "read_settings",
    "settings_changes",
    "write_image_features",
    "write_pair_matches",
    "write_settings",
]
