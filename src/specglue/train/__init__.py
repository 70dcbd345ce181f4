"""Training LightGlue (issue 13, in progress): ground truth and losses so far.

- :mod:`~specglue.train.ground_truth`: match labels of two keypoint sets from a homography,
  with keypoints under a synthetic highlight labelled unmatched;
- :mod:`~specglue.train.losses`: the LightGlue / glue-factory loss (balanced negative
  log-likelihood of the assignment on every layer, token-confidence loss).
"""

from .ground_truth import IGNORE, UNMATCHED, matches_from_homography
from .losses import confidence_loss, deep_supervision_loss, nll_loss

__all__ = ["IGNORE", "UNMATCHED", "confidence_loss", "deep_supervision_loss", "matches_from_homography",
           "nll_loss"]
