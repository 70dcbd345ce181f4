"""Training and fine-tuning LightGlue (glue-factory's recipe), specular- and rotation-aware.

- :mod:`~specglue.train.config`: the typed config (:class:`TrainConf`), YAML + ``key=value``;
- :mod:`~specglue.train.data`: homography pairs from any image folder, pairs with depth and
  poses, photometric changes (:mod:`~specglue.train.augment`), synthetic highlights with masks;
- :mod:`~specglue.train.batches`: frozen features (cached or on the fly), ground truth by
  reprojection (keypoints under a synthetic highlight unmatched), the item order of each step;
- :mod:`~specglue.train.losses`: balanced NLL of the assignment on every layer, token confidence;
- :mod:`~specglue.train.loop`: AdamW, warm-up / decay, clipping, autocast, validation,
  checkpoints, exact resume, DDP under ``torchrun``; :func:`export_weights` writes the best
  weights in the fp16 form specglue ships.
"""

from .config import TrainConf, load_config
from .data import DepthDataConf, DepthPairs, HomographyDataConf, HomographyPairs
from .losses import confidence_loss, deep_supervision_loss, lightglue_loss, nll_loss
from .loop import Trainer, export_weights, train

__all__ = ["DepthDataConf", "DepthPairs", "HomographyDataConf", "HomographyPairs", "TrainConf", "Trainer",
           "confidence_loss", "deep_supervision_loss", "export_weights", "lightglue_loss", "load_config", "nll_loss",
           "train"]
