"""LightGlue: keypoint matching with adaptive depth and width, batched, specular-aware.

Shape letters: B pairs, M / N keypoints in image 0 / 1 (padded), D descriptor width,
Din input descriptor width, Dh head width. Keypoints are pixel (x, y), integer = pixel centre.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from .. import weights as weights_registry
from ..confs import MASK_MARGIN, SPECULAR_MODES, SPECULAR_THRESHOLD
from .attention import TransformerLayer
from .encoding import LearnableFourierPositionalEncoding
from .heads import MatchAssignment, TokenConfidence, filter_matches
from .inputs import ImageInputs, kept_order, parse_image
from ..ops.choice import KERNEL_MODES, use_kernels
from ..ops.cpu import native_bf16
from ..ops.kernels import Linear, use_int8

logger = logging.getLogger(__name__)

StateDict = Dict[str, torch.Tensor]
# Keys of the official releases that the model never used (the DISK release has them).
_LEGACY_UNUSED_KEY = re.compile(r"log_assignment\.\d+\.r")


def normalize_keypoints(kpts: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Map pixel keypoints [B, N, 2] into about [-1, 1], keeping the aspect ratio.

    size: [B, 2] image (W, H). Computed in float32 whatever the autocast state.
    """
    kpts, size = kpts.float(), size.float()
    shift = size / 2
    scale = size.max(-1).values / 2
    return (kpts - shift[:, None, :]) / scale[:, None, None]


@dataclass
class _Tokens:
    """The state of one image's keypoints inside the layers (B' active pairs, L tokens).

    desc [B', L, D]; encoding [2, B', 1, L, Dh]; index [B', L] the original keypoint index or
    -1 for a token that takes no part (padding, pruned, hard-masked specular); self_bias and
    cross_bias [B', L] optional log-weights in [-inf, 0] on this image's tokens as attention keys
    (self-attention / cross-attention and matching).
    """

    desc: torch.Tensor
    encoding: torch.Tensor
    index: torch.Tensor
    self_bias: Optional[torch.Tensor] = None
    cross_bias: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        # The token set only changes by building a new _Tokens, so the masks are made once.
        self.valid = self.index >= 0
        self.all_valid = bool(self.valid.all())
        self.matchable = self.valid if self.cross_bias is None else self.valid & torch.isfinite(self.cross_bias)
        self.self_mask = self._key_mask(self.self_bias)  # [B', 1, 1, L] or None
        self.cross_mask = self._key_mask(self.cross_bias)  # for the other image's queries

    def _key_mask(self, bias: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        if bias is None:
            return None if self.all_valid else self.valid[:, None, None, :]
        return bias.masked_fill(~self.valid, -torch.inf)[:, None, None, :].to(self.desc.dtype)

    def match_log_weight(self) -> Optional[torch.Tensor]:
        """Log-weight [B', L] on matchability (-inf: cannot match), None when all are plain."""
        if self.cross_bias is None and self.all_valid:
            return None
        bias = self.cross_bias if self.cross_bias is not None else self.desc.new_zeros(self.index.shape)
        return bias.masked_fill(~self.valid, -torch.inf)

    def select(self, rows: torch.Tensor) -> "_Tokens":
        """Keep the pairs ``rows`` ([B'] bool or indices)."""
        pick = (lambda t: None if t is None else t[rows])
        return _Tokens(self.desc[rows], self.encoding[:, rows], self.index[rows],
                       pick(self.self_bias), pick(self.cross_bias))

    def compact(self, keep: torch.Tensor) -> "_Tokens":
        """Drop the tokens where ``keep`` [B', L] is False; rows are padded to the longest."""
        if keep.shape[0] == 1:  # one pair: plain selection, no padding
            kept = torch.nonzero(keep[0]).squeeze(1)
            pick = (lambda t: None if t is None else t.index_select(1, kept))
            return _Tokens(self.desc.index_select(1, kept), self.encoding.index_select(3, kept),
                           self.index.index_select(1, kept), pick(self.self_bias), pick(self.cross_bias))
        order, filled = kept_order(keep)
        gather = (lambda t: None if t is None else t.gather(1, order))
        index = torch.where(filled, self.index.gather(1, order), -1)
        desc = self.desc.gather(1, order[..., None].expand(-1, -1, self.desc.shape[-1]))
        enc_index = order[None, :, None, :, None].expand(2, -1, 1, -1, self.encoding.shape[-1])
        encoding = self.encoding.gather(3, enc_index)
        return _Tokens(desc, encoding, index, gather(self.self_bias), gather(self.cross_bias))


class LightGlue(nn.Module):
    """The LightGlue matcher with specular-highlight masks (drop-in for the official model).

    ``LightGlue(features="aliked")`` builds the configuration of that feature type and loads its
    official weights; ``LightGlue(features=None, weights=PATH_OR_STATE_DICT, **conf)`` builds a
    custom model. Configuration order: :attr:`default_conf`, then the ``features`` preset, then
    the caller's keywords; unknown keys raise ``ValueError``.
    """

    default_conf: Dict[str, Any] = {
        "input_dim": 256,  # descriptor width Din of the features (set by the features preset)
        "descriptor_dim": 256,  # internal width D
        "add_scale_ori": False,  # also encode keypoint scale and orientation (SIFT, DoGHardNet)
        "n_layers": 9,  # transformer layers
        "num_heads": 4,  # attention heads
        "flash": True,  # allow fused SDPA kernels (flash / memory-efficient); False: math kernel
        "mp": False,  # mixed precision: autocast fp16 on CUDA, bf16 on a CPU with native bf16 (fp32 on others)
        # CPU without native bf16: the transformer's linear layers in dynamic int8 (ops/kernels.py);
        # ignored on other devices; excludes mp
        "int8": False,
        # CPU inference kernels: "auto" times oneDNN against PyTorch's on first use of each size
        # and keeps the faster (cached per CPU); "onednn" / "pytorch" pin one (ops/choice.py)
        "kernels": "auto",
        "depth_confidence": 0.95,  # early stopping, disable with -1
        "width_confidence": 0.99,  # point pruning, disable with -1
        "filter_threshold": 0.1,  # match if mutual nearest neighbour and score > this
        "weights": None,  # checkpoint path / registry name / state dict (None: preset's)
        "specular_mode": "hard",  # hard | cross | soft | filter | off (docs/api.md)
        "mask_margin": MASK_MARGIN,  # px: a keypoint this close to a highlight counts as specular
    }

    # Pruning costs a gather, so it only runs on images with more tokens than this.
    pruning_keypoint_thresholds = {"cpu": -1, "mps": -1, "cuda": 1024}
    # Device types that run a batch as one padded batch. Elsewhere (CPU) the pairs run one after
    # the other without their padding: one pair already keeps every core busy, and padding only
    # adds work (benchmarks/speed.py --batch). Both give each pair its single-pair result.
    padded_batch_devices = ("cuda", "mps")

    features: Dict[str, Dict[str, Any]] = {
        "superpoint": {"weights": "superpoint_lightglue", "input_dim": 256},
        "disk": {"weights": "disk_lightglue", "input_dim": 128},
        "aliked": {"weights": "aliked_lightglue", "input_dim": 128},
        "sift": {"weights": "sift_lightglue", "input_dim": 128, "add_scale_ori": True},
        "doghardnet": {"weights": "doghardnet_lightglue", "input_dim": 128, "add_scale_ori": True},
        # LighterGlue (XFeat's authors): 6 layers, 1 head, 96 dims; no early stop, as theirs
        "xfeat": {"weights": "xfeat_lighterglue", "input_dim": 64, "descriptor_dim": 96, "n_layers": 6,
                  "num_heads": 1, "depth_confidence": -1.0, "width_confidence": 0.95},
    }

    def __init__(self, features: Optional[str] = "superpoint", **conf: Any) -> None:
        super().__init__()
        unknown = set(conf) - set(self.default_conf)
        if unknown:
            raise ValueError(
                f"Unknown LightGlue option(s) {sorted(unknown)}; known: {sorted(self.default_conf)}"
            )
        if features is not None and features not in self.features:
            raise ValueError(f"Unknown features {features!r}; expected one of {sorted(self.features)}")
        preset = self.features[features] if features else {}
        merged = {**self.default_conf, **preset, **conf}
        if merged["weights"] is None:  # weights=None given: the preset's weights, as documented
            merged["weights"] = preset.get("weights")
        if merged["specular_mode"] not in SPECULAR_MODES:
            raise ValueError(f"specular_mode must be one of {SPECULAR_MODES}, got {merged['specular_mode']!r}")
        if merged["kernels"] not in KERNEL_MODES:
            raise ValueError(f"kernels must be one of {KERNEL_MODES}, got {merged['kernels']!r}")
        if merged["mp"] and merged["int8"]:
            raise ValueError("mp=True and int8=True exclude each other: mp for bf16 / fp16, int8 for CPUs without "
                             "native bf16 (specglue.presets chooses by the machine)")
        self.conf = conf = _FrozenConf(merged)

        d, h, n = conf.descriptor_dim, conf.num_heads, conf.n_layers
        if conf.input_dim != d:
            self.input_proj: nn.Module = Linear(conf.input_dim, d, bias=True)
        else:
            self.input_proj = nn.Identity()
        head_dim = d // h
        self.posenc = LearnableFourierPositionalEncoding(2 + 2 * conf.add_scale_ori, head_dim, head_dim)
        self.transformers = nn.ModuleList([TransformerLayer(d, h) for _ in range(n)])
        self.log_assignment = nn.ModuleList([MatchAssignment(d) for _ in range(n)])
        self.token_confidence = nn.ModuleList([TokenConfidence(d) for _ in range(n - 1)])
        thresholds = [self.confidence_threshold(i) for i in range(n)]
        self.register_buffer("confidence_thresholds", torch.tensor(thresholds, dtype=torch.float32))
        # Python copy of the same values: comparing against a float avoids a device sync.
        self._thresholds = thresholds
        self._warned_no_bf16 = False

        source = conf.weights
        if isinstance(source, str) and source in weights_registry.CHECKPOINTS:
            fits = weights_registry.CHECKPOINTS[source].features
            if fits is not None and features != fits:
                raise ValueError(f"weights {source!r} are a matcher for {fits!r} features: "
                                 f"LightGlue(features={fits!r}, weights={source!r})")
            source = weights_registry.resolve(source)
        if source is not None:
            self.load_weights(source)
        else:
            logger.info("LightGlue built with random weights (features=None, weights=None)")

    # ------------------------------------------------------------------ weights
    def load_weights(self, source: Union[str, Path, StateDict]) -> None:
        """Load an official (or specglue) checkpoint, renaming the pre-release key names
        ``self_attn.N`` / ``cross_attn.N`` to ``transformers.N.*``. Raises ``ValueError`` naming
        the file when it is corrupt or does not fit this configuration."""
        name = "<state dict>" if isinstance(source, dict) else str(source)
        state = dict(weights_registry.load_state_dict(source))
        if any(key.startswith("matcher.") for key in state):  # glue-factory's extractor.* + matcher.*
            state = {key[len("matcher."):]: value for key, value in state.items() if key.startswith("matcher.")}
        renamed = {}
        for key, value in state.items():
            for old in ("self_attn", "cross_attn"):
                if key.startswith(old + "."):
                    layer, rest = key[len(old) + 1:].split(".", 1)
                    key = f"transformers.{layer}.{old}.{rest}"
            renamed[key] = value
        renamed.pop("confidence_thresholds", None)  # derived from the config
        expected = self.state_dict()
        expected.pop("confidence_thresholds")
        missing = sorted(set(expected) - set(renamed))
        if missing:
            raise ValueError(
                f"Checkpoint {name} does not fit this LightGlue (n_layers={self.conf.n_layers}, "
                f"input_dim={self.conf.input_dim}, add_scale_ori={self.conf.add_scale_ori}): "
                f"{len(missing)} missing keys, e.g. {missing[:3]}"
            )
        unexpected = sorted(set(renamed) - set(expected))
        legacy = [k for k in unexpected if _LEGACY_UNUSED_KEY.fullmatch(k)]
        if len(legacy) < len(unexpected):
            extra = [k for k in unexpected if k not in legacy]
            hint = ""
            if "input_proj.weight" in extra:
                hint = f" (its descriptors have width {renamed['input_proj.weight'].shape[1]}: set input_dim)"
            raise ValueError(f"Checkpoint {name} has keys this LightGlue does not: {extra[:3]}{hint}")
        renamed = {k: v for k, v in renamed.items() if k in expected}
        for key, value in renamed.items():
            if value.shape != expected[key].shape:
                raise ValueError(
                    f"Checkpoint {name}: {key} has shape {tuple(value.shape)} but this LightGlue "
                    f"expects {tuple(expected[key].shape)} (input_dim={self.conf.input_dim}, "
                    f"descriptor_dim={self.conf.descriptor_dim})"
                )
        self.load_state_dict(renamed, strict=False)

    # ------------------------------------------------------------------ config
    def confidence_threshold(self, layer_index: int) -> float:
        """Early-stopping confidence threshold of a layer: clip(0.8 + 0.1 exp(-4 i / L), 0, 1)."""
        threshold = 0.8 + 0.1 * np.exp(-4.0 * layer_index / self.conf.n_layers)
        return float(np.clip(threshold, 0, 1))

    def compile(self, mode: Optional[str] = None, dynamic: bool = True) -> "LightGlue":
        """Compile each transformer layer with :func:`torch.compile` (in place; returns self).

        Keypoint counts change with every input and with pruning, so shapes are dynamic by
        default. Early stopping, pruning, batching and masks keep working: only the layers are
        compiled, the orchestration stays in Python.
        """
        for layer in self.transformers:
            layer.compile(mode=mode, dynamic=dynamic)
        return self

    def pruning_min_kpts(self, device: torch.device) -> int:
        return self.pruning_keypoint_thresholds.get(device.type, -1)

    # ------------------------------------------------------------------ forward
    def forward(self, data: Mapping[str, Any], specular_mode: Optional[str] = None) -> Dict[str, Any]:
        """Match keypoints and descriptors between two images.

        Input (dict), per image ``image0`` (M keypoints) and ``image1`` (N keypoints):
            keypoints: [B, M, 2] pixel (x, y)
            descriptors: [B, M, Din]
            image_size: [B, 2] (W, H), or image: [B, C, H, W]
            keypoint_mask: [B, M] bool, False on padding (or lengths: [B] int), optional
            scales, oris: [B, M] for features with scale and orientation (SIFT)
            specular_mask: [B, H, W] bool or float in [0, 1], True / 1 = specular, optional
            keypoint_specular: [B, M] bool or float in [0, 1], optional
        ``specular_mode`` overrides the configured mode for this call.

        Output (dict):
            matches0: [B, M] index into image 1 or -1; matches1: [B, N]
            matching_scores0: [B, M]; matching_scores1: [B, N]
            matches: list of B [S, 2] index pairs; scores: list of B [S]
            stop: int, layers run (the largest over the batch); stops: [B] per pair
            prune0: [B, M], prune1: [B, N] number of layers each keypoint took part in
            specularity0: [B, M], specularity1: [B, N] when masks were given
        """
        mode = self.conf.specular_mode if specular_mode is None else specular_mode
        if mode not in SPECULAR_MODES:
            raise ValueError(f"specular_mode must be one of {SPECULAR_MODES}, got {mode!r}")
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict with keys 'image0' and 'image1', got {type(data).__name__}")
        sizes: Dict[str, int] = {}
        conf = dict(input_dim=self.conf.input_dim, add_scale_ori=self.conf.add_scale_ori,
                    mask_margin=int(self.conf.mask_margin), owner="this LightGlue")
        image0 = parse_image(data, "image0", "M", sizes, **conf)
        image1 = parse_image(data, "image1", "N", sizes, **conf)
        device = image0.keypoints.device
        mp = bool(self.conf.mp)
        if mp and device.type == "cpu" and not native_bf16():
            mp = False  # emulated bf16 ran at 0.24x fp32 (1024 keypoints, AVX2 EPYC; docs/speed.md)
            if not self._warned_no_bf16:
                self._warned_no_bf16 = True
                logger.warning("LightGlue(mp=True): this CPU has no native bf16 (no AMX, no AVX512-BF16), where "
                               "bf16 is emulated and slower than fp32, so the matcher runs fp32; the fast preset "
                               "(specglue.presets) uses int8 linear layers on such CPUs")
        amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        kernel = contextlib.nullcontext() if self.conf.flash else sdpa_kernel(SDPBackend.MATH)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=mp), kernel, \
                use_kernels(self.conf.kernels), use_int8(self.conf.int8):
            if image0.valid.shape[0] > 1 and device.type not in self.padded_batch_devices:
                return self._match_each_pair(image0, image1, mode)
            return self._match_pairs(image0, image1, mode)

    def forward_train(self, data: Mapping[str, Any], specular_mode: Optional[str] = None) -> Dict[str, Any]:
        """Every layer's assignment and token confidence, for training (glue-factory's recipe:
        no early stopping, no pruning, the batch padded; same input dict as :meth:`forward`).

        Returns:
            log_assignment: list of L [B, M+1, N+1] (padding and hard-masked keypoints
            have -inf rows / columns and a dustbin log-probability of 0); confidence: list of
            L - 1 pairs ([B, M], [B, N]); valid0 [B, M], valid1 [B, N] bool (not padding).
        """
        mode = self.conf.specular_mode if specular_mode is None else specular_mode
        if mode not in SPECULAR_MODES or mode == "filter":
            raise ValueError(f"training needs a specular_mode among off, hard, cross, soft; got {mode!r}")
        sizes: Dict[str, int] = {}
        conf = dict(input_dim=self.conf.input_dim, add_scale_ori=self.conf.add_scale_ori,
                    mask_margin=int(self.conf.mask_margin), owner="this LightGlue")
        image0 = parse_image(data, "image0", "M", sizes, **conf)
        image1 = parse_image(data, "image1", "N", sizes, **conf)
        tokens0, tokens1 = self._tokens(image0, mode), self._tokens(image1, mode)
        log_assignments, confidences = [], []
        for i in range(self.conf.n_layers):
            tokens0.desc, tokens1.desc = self.transformers[i](
                tokens0.desc, tokens1.desc, tokens0.encoding, tokens1.encoding,
                tokens0.self_mask, tokens1.self_mask, tokens1.cross_mask, tokens0.cross_mask,
            )
            scores, _ = self.log_assignment[i](tokens0.desc, tokens1.desc, tokens0.match_log_weight(),
                                               tokens1.match_log_weight())
            log_assignments.append(scores)
            if i < self.conf.n_layers - 1:
                confidences.append(self.token_confidence[i](tokens0.desc, tokens1.desc))
        return {"log_assignment": log_assignments, "confidence": confidences,
                "valid0": image0.valid, "valid1": image1.valid}

    # ------------------------------------------------------------------ matching
    def _match_pairs(self, image0: ImageInputs, image1: ImageInputs, mode: str) -> Dict[str, Any]:
        """The pairs of the batch matched together (padded to the longest)."""
        if mode == "filter":
            return self._match_filtered(image0, image1)
        return self._match(image0, image1, mode)

    def _match_each_pair(self, image0: ImageInputs, image1: ImageInputs, mode: str) -> Dict[str, Any]:
        """A batch matched one pair at a time, each without its padding."""
        b, m, n = image0.valid.shape[0], image0.valid.shape[1], image1.valid.shape[1]
        result = _Outputs.empty(b, m, n, image0.keypoints.device, torch.float32)
        for k in range(b):
            (pair0, index0), (pair1, index1) = image0.pair(k), image1.pair(k)
            result.scatter_output(torch.tensor([k], device=index0.device), index0, index1,
                                  self._match_pairs(pair0, pair1, mode))
        return result.as_dict(image0.specularity, image1.specularity)

    def _match_filtered(self, image0: ImageInputs, image1: ImageInputs) -> Dict[str, Any]:
        """The "filter" baseline: drop specular keypoints, match the rest, map indices back."""
        keep0, keep1 = image0.valid, image1.valid
        if image0.specularity is not None:
            keep0 = keep0 & (image0.specularity < SPECULAR_THRESHOLD)
        if image1.specularity is not None:
            keep1 = keep1 & (image1.specularity < SPECULAR_THRESHOLD)
        sub0, orig0 = image0.subset(keep0)
        sub1, orig1 = image1.subset(keep1)
        out = self._match(sub0, sub1, "off")
        b, m, n = image0.valid.shape[0], image0.valid.shape[1], image1.valid.shape[1]
        result = _Outputs.empty(b, m, n, image0.keypoints.device, out["matching_scores0"].dtype)
        result.scatter_output(torch.arange(b, device=orig0.device), orig0, orig1, out)
        return result.as_dict(image0.specularity, image1.specularity)

    def _tokens(self, image: ImageInputs, mode: str) -> _Tokens:
        kpts = normalize_keypoints(image.keypoints, image.size)
        if image.scale_ori is not None:
            kpts = torch.cat([kpts, image.scale_ori], -1)
        desc = self.input_proj(image.descriptors.contiguous())
        encoding = self.posenc(kpts)
        valid = image.valid
        self_bias = cross_bias = None
        spec = image.specularity if mode != "off" else None
        if spec is not None:
            if mode == "hard":
                valid = valid & (spec < SPECULAR_THRESHOLD)
            elif mode == "cross":
                cross_bias = torch.where(spec < SPECULAR_THRESHOLD, 0.0, -torch.inf).to(desc.dtype)
            elif mode == "soft":
                valid = valid & (spec < 1)
                self_bias = cross_bias = torch.log1p(-spec.clamp(max=1)).to(desc.dtype)
        index = torch.where(valid, torch.arange(valid.shape[1], device=valid.device)[None], -1)
        return _Tokens(desc, encoding, index, self_bias, cross_bias)

    def _match(self, image0: ImageInputs, image1: ImageInputs, mode: str) -> Dict[str, Any]:
        b, m, n = image0.valid.shape[0], image0.valid.shape[1], image1.valid.shape[1]
        device = image0.keypoints.device
        tokens0, tokens1 = self._tokens(image0, mode), self._tokens(image1, mode)
        out = _Outputs.empty(b, m, n, device, torch.float32)
        out.prune0[tokens0.valid], out.prune1[tokens1.valid] = 1, 1

        pairs = torch.arange(b, device=device)
        counts0, counts1 = tokens0.matchable.sum(1), tokens1.matchable.sum(1)
        active = (counts0 > 0) & (counts1 > 0)  # pairs with nothing to match stop at once (0 layers)
        num_points = (counts0 + counts1).float()
        if not bool(active.all()):
            pairs, num_points = pairs[active], num_points[active]
            tokens0, tokens1 = tokens0.select(active), tokens1.select(active)

        do_early_stop = self.conf.depth_confidence > 0
        do_pruning = self.conf.width_confidence > 0
        pruning_min = self.pruning_min_kpts(device)
        n_layers = self.conf.n_layers
        for i in range(n_layers):
            if pairs.numel() == 0:
                break
            tokens0.desc, tokens1.desc = self.transformers[i](
                tokens0.desc, tokens1.desc, tokens0.encoding, tokens1.encoding,
                tokens0.self_mask, tokens1.self_mask, tokens1.cross_mask, tokens0.cross_mask,
            )
            if i == n_layers - 1:
                break
            conf0 = conf1 = None
            if do_early_stop:
                conf0, conf1 = self.token_confidence[i](tokens0.desc, tokens1.desc)
                threshold = self._thresholds[i]
                unsure = ((conf0 < threshold) & tokens0.matchable).sum(1) + (
                    (conf1 < threshold) & tokens1.matchable).sum(1)
                stop = (1.0 - unsure / num_points) > self.conf.depth_confidence
                if bool(stop.any()):
                    self._finish(out, pairs[stop], tokens0.select(stop), tokens1.select(stop), i)
                    go = ~stop
                    pairs, num_points = pairs[go], num_points[go]
                    tokens0, tokens1 = tokens0.select(go), tokens1.select(go)
                    conf0, conf1 = conf0[go], conf1[go]
                    if pairs.numel() == 0:
                        break
            if do_pruning:
                tokens0 = self._prune(tokens0, conf0, i, pruning_min, pairs, out.prune0)
                tokens1 = self._prune(tokens1, conf1, i, pruning_min, pairs, out.prune1)
        if pairs.numel():
            self._finish(out, pairs, tokens0, tokens1, n_layers - 1)
        if not do_pruning:
            out.prune0[out.prune0 > 0], out.prune1[out.prune1 > 0] = n_layers, n_layers
        return out.as_dict(image0.specularity, image1.specularity)

    def _prune(self, tokens: _Tokens, confidence: Optional[torch.Tensor], layer: int, min_kpts: int,
               pairs: torch.Tensor, prune_count: torch.Tensor) -> _Tokens:
        """Drop tokens that are confidently unmatchable; images with few points are left alone."""
        matchable = tokens.matchable
        prunable = matchable.sum(1) > min_kpts  # [B']
        if not bool(prunable.any()):
            return tokens
        keep = self.log_assignment[layer].get_matchability(tokens.desc) > 1 - self.conf.width_confidence
        if confidence is not None:  # low-confidence points are never pruned
            keep |= confidence <= self._thresholds[layer]
        keep = tokens.valid & (keep | ~matchable | ~prunable[:, None])
        rows = pairs[:, None].expand_as(keep)
        counted = keep & prunable[:, None]
        prune_count[rows[counted], tokens.index[counted]] += 1
        if bool((keep == tokens.valid).all()):
            return tokens
        return tokens.compact(keep)

    def _finish(self, out: "_Outputs", pairs: torch.Tensor, tokens0: _Tokens, tokens1: _Tokens,
                layer: int) -> None:
        """Assignment and matches for ``pairs`` that stop after ``layer``."""
        out.stops[pairs] = layer + 1
        if tokens0.desc.shape[1] == 0 or tokens1.desc.shape[1] == 0:
            return
        scores, _ = self.log_assignment[layer](
            tokens0.desc, tokens1.desc, tokens0.match_log_weight(), tokens1.match_log_weight()
        )
        m0, m1, s0, s1 = filter_matches(scores.float(), self.conf.filter_threshold)
        out.scatter(pairs, tokens0.index, tokens1.index, m0, m1, s0, s1)


class _Outputs:
    """Accumulates per-pair results in the original keypoint indexing."""

    def __init__(self, matches0: torch.Tensor, matches1: torch.Tensor, scores0: torch.Tensor,
                 scores1: torch.Tensor, prune0: torch.Tensor, prune1: torch.Tensor,
                 stops: torch.Tensor) -> None:
        self.matches0, self.matches1 = matches0, matches1
        self.scores0, self.scores1 = scores0, scores1
        self.prune0, self.prune1 = prune0, prune1
        self.stops = stops

    @classmethod
    def empty(cls, b: int, m: int, n: int, device: torch.device, dtype: torch.dtype) -> "_Outputs":
        long = dict(dtype=torch.long, device=device)
        return cls(torch.full((b, m), -1, **long), torch.full((b, n), -1, **long),
                   torch.zeros((b, m), dtype=dtype, device=device),
                   torch.zeros((b, n), dtype=dtype, device=device),
                   torch.zeros((b, m), **long), torch.zeros((b, n), **long), torch.zeros(b, **long))

    def scatter(self, pairs: torch.Tensor, index0: torch.Tensor, index1: torch.Tensor,
                m0: torch.Tensor, m1: torch.Tensor, s0: torch.Tensor, s1: torch.Tensor,
                prune0: Optional[torch.Tensor] = None, prune1: Optional[torch.Tensor] = None) -> None:
        """Write results given on local token indices (index0 [P, L0] / index1 [P, L1] map a
        token to its original keypoint, -1 for none) into the rows ``pairs`` [P]."""
        for index, other, local, scores, prune, dst_m, dst_s, dst_p in (
            (index0, index1, m0, s0, prune0, self.matches0, self.scores0, self.prune0),
            (index1, index0, m1, s1, prune1, self.matches1, self.scores1, self.prune1),
        ):
            valid = index >= 0
            rows = pairs[:, None].expand_as(index)[valid]
            cols = index[valid]
            if prune is not None:
                dst_p[rows, cols] = prune[valid]
            if local.shape[1] == 0 or other.shape[1] == 0:
                continue
            target = torch.where(local >= 0, other.gather(1, local.clamp(min=0)), -1)
            dst_m[rows, cols] = target[valid]
            dst_s[rows, cols] = scores[valid].to(dst_s.dtype)

    def scatter_output(self, pairs: torch.Tensor, index0: torch.Tensor, index1: torch.Tensor,
                       out: Mapping[str, Any]) -> None:
        """Write the forward output ``out`` of a sub-problem (its pair j is row ``pairs[j]``;
        index0 / index1 map its keypoints to the original ones, as in :meth:`scatter`)."""
        self.stops[pairs] = out["stops"]
        self.scatter(pairs, index0, index1, out["matches0"], out["matches1"], out["matching_scores0"],
                     out["matching_scores1"], out["prune0"], out["prune1"])

    def as_dict(self, specularity0: Optional[torch.Tensor], specularity1: Optional[torch.Tensor]) -> Dict[str, Any]:
        matches: List[torch.Tensor] = []
        scores: List[torch.Tensor] = []
        for k in range(self.matches0.shape[0]):
            valid = self.matches0[k] > -1
            idx0 = torch.where(valid)[0]
            matches.append(torch.stack([idx0, self.matches0[k][valid]], -1))
            scores.append(self.scores0[k][valid])
        result = {
            "matches0": self.matches0,
            "matches1": self.matches1,
            "matching_scores0": self.scores0,
            "matching_scores1": self.scores1,
            "matches": matches,
            "scores": scores,
            "stop": int(self.stops.max()) if self.stops.numel() else 0,
            "stops": self.stops,
            "prune0": self.prune0,
            "prune1": self.prune1,
        }
        if specularity0 is not None or specularity1 is not None:
            result["specularity0"] = specularity0 if specularity0 is not None else torch.zeros_like(self.scores0)
            result["specularity1"] = specularity1 if specularity1 is not None else torch.zeros_like(self.scores1)
        return result


class _FrozenConf:
    """Read-only attribute view of the merged configuration."""

    def __init__(self, values: Dict[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") or key == "_values":
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("LightGlue.conf is read-only; pass options to the constructor")

    def to_dict(self) -> Dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"LightGlueConf({self._values})"
