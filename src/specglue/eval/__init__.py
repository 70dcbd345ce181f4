"""Evaluation: synthetic homographies, HPatches-style folders and relative pose (pairs_with_gt).

Each benchmark runs in two loops (``STYLE.md`` #8): features and predictions of every method
are exported to HDF5 caches in ``out_dir`` (resumable), then scored into ``results.json``,
``table.md`` and ``plots/*.png``. :func:`rescore` reruns only the scoring.

Library entry points (the CLI subcommands call ``add_arguments`` / ``main`` of each module)::

    from specglue.eval import homography, hpatches, pose
    results = homography.run(None, features="aliked", num_homographies=2, specular="camera_fixed")
    results["table"]    # Markdown, one row per method
    results["summary"]  # {method: {"prec@3px": ..., "auc_ransac@3px": ..., ...}}
"""

from . import homography, hpatches, metrics, methods, pose, report
from .homography import rescore

__all__ = ["homography", "hpatches", "metrics", "methods", "pose", "report", "rescore"]
