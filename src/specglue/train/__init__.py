"""Training LightGlue (issue 13, in progress): data and losses so far.

- :mod:`~specglue.train.data`: homography pairs from any image folder, photometric changes,
  synthetic highlights with their masks, repeatable by index;
- :mod:`~specglue.train.losses`: the LightGlue / glue-factory loss (balanced negative
  log-likelihood of the assignment on every layer, token-confidence loss), on labels from
  :func:`specglue.geometry.gt_matches_batch_from_homography` (keypoints under a synthetic
  highlight labelled unmatched).
"""

from .data import HomographyDataConf, HomographyPairs
from .losses import confidence_loss, deep_supervision_loss, lightglue_loss, nll_loss

__all__ = ["HomographyDataConf", "HomographyPairs", "confidence_loss", "deep_supervision_loss", "lightglue_loss",
           "nll_loss"]
