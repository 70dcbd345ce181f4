"""Training pairs: a photo and its random homography warp (:class:`HomographyPairs`, from any
folder of images) or real pairs with depth and poses (:class:`DepthPairs`: MegaDepth-style
scenes, or an endoscopy structure-from-motion sequence whose point tracks give the depth), with
photometric changes and synthetic specular highlights with their masks; :class:`MixedPairs`
draws each item from one or the other.

Each item is a pure function of ``(conf.seed, index)``: the same index gives the same pair in
every process and after a resume. Image ``index % len(images)`` is resized to ``conf.size``;
the warp is drawn by :func:`specglue.geometry.sample_homography` with its ranges scaled by
``conf.difficulty`` (0.5 = the evaluation's defaults, 1 = twice as hard) and in-plane rotation
up to ``conf.max_angle_deg`` (180 for rotation-aware training); the warped view gets the
evaluation's photometric changes; with probability ``conf.specular_probability`` both views
get highlights (:func:`specglue.specular.synthesize_pair`, a placement drawn from
``conf.placements``: ``camera_fixed`` as in endoscopy, ``independent`` as when the light moves).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from .. import specular
from ..features.base import shrink
from ..features.roi import estimate_roi, roi_from_file
from ..geometry import DEFAULT_HOMOGRAPHY_SAMPLING, sample_homography, warp_image
from ..images import list_images, load_image, scale_matrix, to_tensor
from .augment import lg_augment

PathLike = Union[str, Path]


#: the settings of HomographyDataConf.field_of_view
FIELDS_OF_VIEW = ("none", "auto")


@dataclass(frozen=True)
class HomographyDataConf:
    size: Tuple[int, int] = (320, 240)  # (W, H) of both views
    difficulty: float = 0.5  # scales scale / perspective / translation ranges; 0.5 = eval defaults
    max_angle_deg: float = 25.0  # in-plane rotation drawn in [-a, a]; 180 for rotation-aware
    photometric: bool = True  # lg_augment on each view (gamma, colour, contrast, blur / noise / JPEG)
    specular_probability: float = 0.8  # share of pairs with synthetic highlights
    placements: Tuple[str, ...] = ("camera_fixed", "independent")
    # endoscopes: "auto" estimates each image's field of view (none for ordinary photos); where
    # there is one, the warped view is cut to the same, camera-fixed view (its rim does not move)
    # and keypoints are detected only inside it in both views (items get roi0 / roi1)
    field_of_view: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.field_of_view not in FIELDS_OF_VIEW:
            raise ValueError(f"field_of_view must be one of {FIELDS_OF_VIEW}, got {self.field_of_view!r}")
        if not 0.0 <= self.difficulty <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {self.difficulty}")
        if not 0.0 <= self.specular_probability <= 1.0:
            raise ValueError(f"specular_probability must be in [0, 1], got {self.specular_probability}")
        unknown = set(self.placements) - {"camera_fixed", "independent", "surface_fixed"}
        if unknown or not self.placements:
            raise ValueError(f"placements must be among camera_fixed, independent, surface_fixed; got {self.placements}")


class HomographyPairs(torch.utils.data.Dataset):
    """Pairs made from ``images`` (a folder, searched recursively, or a list of files).

    Items: ``image0`` / ``image1`` [3, H, W] float in [0, 1], ``H_0to1`` [3, 3] float32,
    ``specular_mask0`` / ``specular_mask1`` [H, W] bool (all False without highlights),
    ``index`` (int); with ``conf.field_of_view="auto"`` and an image that has one,
    ``roi0`` / ``roi1`` [H, W] bool (the same camera-fixed view).

    Args:
        length: items per epoch (default: one per image).
    """

    def __init__(self, images: Union[PathLike, Sequence[PathLike]], conf: HomographyDataConf = HomographyDataConf(),
                 length: int = 0) -> None:
        self.files: List[Path] = (list_images(images) if isinstance(images, (str, Path))
                                  else [Path(p) for p in images])
        if not self.files:
            raise ValueError("HomographyPairs needs at least one image")
        self.conf = conf
        self.length = int(length) or len(self.files)
        self._views: Dict[int, Optional[np.ndarray]] = {}  # file index -> field of view at conf.size

    def __len__(self) -> int:
        return self.length

    def field_of_view(self, file_index: int, rgb: np.ndarray) -> Optional[np.ndarray]:
        """The field of view [H, W] bool of image ``file_index`` (``rgb`` at ``conf.size``), or None."""
        if self.conf.field_of_view == "none":
            return None
        if file_index not in self._views:
            self._views[file_index] = estimate_roi(rgb)
        return self._views[file_index]

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        conf = self.conf
        rng = np.random.default_rng([conf.seed, int(index)])
        width, height = conf.size
        file_index = index % len(self.files)
        rgb = load_image(self.files[file_index])
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        view = self.field_of_view(file_index, rgb)
        factor = 2.0 * conf.difficulty
        low, high = DEFAULT_HOMOGRAPHY_SAMPLING["scale_range"]
        H = sample_homography(height, width, rng=rng, max_angle_deg=conf.max_angle_deg,
                              scale_range=(low ** factor, high ** factor),
                              perspective=DEFAULT_HOMOGRAPHY_SAMPLING["perspective"] * factor,
                              translation=DEFAULT_HOMOGRAPHY_SAMPLING["translation"] * factor)
        image0 = rgb.astype(np.float32) / 255.0
        image1 = warp_image(image0, H)
        if conf.photometric:
            image0, image1 = lg_augment(image0, rng), lg_augment(image1, rng)
        homography = torch.from_numpy(H).float()
        item = add_highlights(image0, image1, rng, conf.specular_probability, conf.placements, homography)
        if view is not None:  # the endoscope's rim stays where it is: black outside the view, no highlight
            inside = torch.from_numpy(view)  # [H, W]
            for k in (0, 1):
                item[f"image{k}"] = item[f"image{k}"] * inside
                item[f"specular_mask{k}"] = item[f"specular_mask{k}"] & inside
                item[f"roi{k}"] = inside.clone()
        return {**item, "H_0to1": homography, "index": int(index)}


def add_highlights(image0: np.ndarray, image1: np.ndarray, rng: np.random.Generator, probability: float,
                   placements: Sequence[str], homography: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """Both views as tensors [3, H, W], with synthetic highlights and their masks [H, W] (all
    False without) with ``probability``; the placement is drawn from ``placements``."""
    t0, t1 = to_tensor(image0), to_tensor(image1)
    mask0 = torch.zeros(t0.shape[-2:], dtype=torch.bool)
    mask1 = torch.zeros(t1.shape[-2:], dtype=torch.bool)
    if rng.random() < probability:
        placement = str(rng.choice(list(placements)))
        warp = homography if placement == "surface_fixed" else None
        t0, mask0, t1, mask1 = specular.synthesize_pair(t0, t1, warp, placement=placement,
                                                        seed=int(rng.integers(2 ** 31 - 1)))
    return {"image0": t0, "image1": t1, "specular_mask0": mask0, "specular_mask1": mask1}


@dataclass(frozen=True)
class DepthDataConf:
    resize: int = 640  # long side of both views in px (0: native); intrinsics follow
    photometric: bool = True  # lg_augment on each view
    specular_probability: float = 0.8
    placements: Tuple[str, ...] = ("camera_fixed", "independent")  # surface_fixed needs a homography
    positive_px: float = 3.0  # ground truth (glue-factory's MegaDepth: 3 / 5 px)
    negative_px: float = 5.0
    depth_tolerance: float = 0.1  # relative depth disagreement that counts as occluded
    # endoscopy structure-from-motion sequences (motion.yaml, structure.ply; see read_sfm_scene):
    sfm_frames: Tuple[str, ...] = ()  # (first, last) frame file names kept, inclusive; (): every frame
    sfm_max_gap: int = 10  # pairs of frames at most this many frames apart
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.sfm_frames) not in (0, 2):
            raise ValueError(f"sfm_frames must be () or (first, last) frame names, got {self.sfm_frames}")
        if self.sfm_max_gap < 1:
            raise ValueError(f"sfm_max_gap must be >= 1, got {self.sfm_max_gap}")
        if not 0.0 <= self.specular_probability <= 1.0:
            raise ValueError(f"specular_probability must be in [0, 1], got {self.specular_probability}")
        unknown = set(self.placements) - {"camera_fixed", "independent"}
        if unknown or not self.placements:
            raise ValueError(f"depth placements must be among camera_fixed, independent; got {self.placements}")


def track_depth_at(points: np.ndarray, K: np.ndarray, T_cam_from_world: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Depth [Q] at pixels ``query`` [Q, 2] of one view, from the structure-from-motion points
    ``points`` [P, 3] (world) it sees: projected with ``K`` and ``T_cam_from_world``, their
    depths interpolated linearly over the Delaunay triangles of the projections (a smooth
    surface between neighbouring track points); 0 (unknown) outside their convex hull."""
    from scipy.interpolate import LinearNDInterpolator  # core dependency; imported here to keep imports light

    camera = points @ T_cam_from_world[:3, :3].T + T_cam_from_world[:3, 3]  # [P, 3]
    camera = camera[camera[:, 2] > 0]
    if len(camera) < 3:
        return np.zeros(len(query))
    uvw = camera @ K.T
    depth = LinearNDInterpolator(uvw[:, :2] / uvw[:, 2:], camera[:, 2], fill_value=0.0)(query)
    return np.nan_to_num(depth, nan=0.0)


def track_depth(points: np.ndarray, K: np.ndarray, T_cam_from_world: np.ndarray, shape: Tuple[int, int]
                ) -> np.ndarray:
    """The depth map [H, W] float32 of :func:`track_depth_at` over a view of ``shape`` (H, W).

    On the sinus sequence, predicting a track point from the others moves its reprojection into
    a frame 1-9 frames away by a median 0.03-0.23 px at 640 px wide (``benchmarks/track_labels.py``).
    """
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width]
    query = np.stack([xs.ravel(), ys.ravel()], axis=1)
    return track_depth_at(points, K, T_cam_from_world, query).reshape(shape).astype(np.float32)


def read_sfm_scene(folder: Union[str, Path], conf: DepthDataConf) -> Tuple[Dict[str, Any], List[Tuple[Path, str, str]]]:
    """The images and pairs of an endoscopy structure-from-motion sequence as a depth scene.

    The layout of :func:`specglue.geometry.poses.read_endoscopy_sfm_poses` plus
    ``structure.ply`` and ``view_indexes_per_point``: each registered frame (within
    ``conf.sfm_frames``) gets the depth of the track points it sees (:func:`track_depth`), its
    pose, and the field of view of ``undistorted_mask.bmp`` where present; pairs are all frames
    at most ``conf.sfm_max_gap`` apart. The tracks are thus the ground truth's correspondences.
    """
    from ..geometry.poses import read_endoscopy_sfm_points, read_endoscopy_sfm_poses

    folder = Path(folder)
    poses = read_endoscopy_sfm_poses(folder)
    points, views = read_endoscopy_sfm_points(folder)
    names = [n for n in poses.names if (folder / n).is_file()]
    if conf.sfm_frames:
        first, last = conf.sfm_frames
        names = [n for n in names if first <= n <= last]
    if len(names) < 2:
        raise ValueError(f"{folder}: fewer than two frames with poses and images within sfm_frames {conf.sfm_frames}")
    roi = "undistorted_mask.bmp" if (folder / "undistorted_mask.bmp").is_file() else None
    images = {}
    for name in names:
        frame = int(Path(name).stem)
        seen = np.array([frame in v for v in views])
        height, width = load_image(folder / name).shape[:2]
        images[name] = {"image": name, "depth": track_depth(points[seen], poses.K[name], poses.T_cam_from_world[name],
                                                            (height, width)),
                        "K": poses.K[name], "T_cam_from_world": poses.T_cam_from_world[name], "roi": roi}
    frames = {n: int(Path(n).stem) for n in names}
    pairs = [(folder, a, b) for i, a in enumerate(names) for b in names[i + 1:]
             if frames[b] - frames[a] <= conf.sfm_max_gap]
    return images, pairs


def _read_depth(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        depth = np.load(path)
    elif path.suffix in (".h5", ".hdf5"):
        import h5py  # core dependency; imported here to keep `import specglue.train` light

        with h5py.File(path, "r") as f:
            if "depth" not in f:
                raise ValueError(f"depth file {path} has no 'depth' dataset (MegaDepth's layout)")
            depth = f["depth"][()]
    else:
        raise ValueError(f"depth file {path} must be .npy or .h5 (dataset 'depth'), got {path.suffix!r}")
    if depth.ndim != 2:
        raise ValueError(f"depth file {path} must hold an [H, W] map, got shape {depth.shape}")
    return depth.astype(np.float32)


class DepthPairs(torch.utils.data.Dataset):
    """Image pairs with depth maps, intrinsics and poses (MegaDepth / ScanNet style).

    Each scene is a folder with a ``scene.json``::

        {"images": {"NAME": {"image": "images/a.jpg", "depth": "depths/a.h5",
                             "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                             "T_cam_from_world": [[...4 x 4...]],
                             "roi": "fov.png"}, ...},
         "pairs": [["NAME0", "NAME1"], ...]}

    (paths relative to the folder; depth ``.npy`` or ``.h5`` with a ``depth`` dataset, 0 where
    unknown; ``roi``, optional: a field-of-view mask, keypoints only inside), or an endoscopy
    structure-from-motion sequence (:func:`read_sfm_scene`). Item ``index`` is pair
    ``index % len(pairs)`` with its augmentation drawn from ``(conf.seed, index)``. Items:
    ``image0`` / ``image1`` [3, H, W], ``depth0`` / ``depth1`` [H, W], ``K0`` / ``K1`` [3, 3],
    ``T_0to1`` [4, 4] (float64: camera 0 to camera 1), ``specular_mask0`` / ``specular_mask1``
    [H, W] bool, ``index``; ``roi0`` / ``roi1`` [H, W] bool where the images have one.

    Args:
        pairs: ``(scene folder, name0, name1)`` triples; :meth:`from_scenes` reads them.
        length: items per epoch (default: one per pair).
    """

    def __init__(self, pairs: Sequence[Tuple[Path, str, str]], scenes: Dict[Path, Dict[str, Any]],
                 conf: DepthDataConf = DepthDataConf(), length: int = 0) -> None:
        if not pairs:
            raise ValueError("DepthPairs needs at least one pair")
        self.pairs, self.scenes, self.conf = list(pairs), scenes, conf
        self.length = int(length) or len(self.pairs)

    @staticmethod
    def read_scene(folder: Union[str, Path], conf: DepthDataConf = DepthDataConf()
                   ) -> Tuple[Dict[str, Any], List[Tuple[Path, str, str]]]:
        """The images of ``folder/scene.json`` (or of the structure-from-motion sequence in
        ``folder``) and its pairs; errors name the file and entry."""
        folder = Path(folder)
        path = folder / "scene.json"
        if not path.is_file() and (folder / "motion.yaml").is_file():
            return read_sfm_scene(folder, conf)
        if not path.is_file():
            raise FileNotFoundError(f"scene file not found: {path} (nor a structure-from-motion motion.yaml)")
        try:
            scene = json.loads(path.read_text())
            images, pairs = scene["images"], scene["pairs"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path} must be JSON with 'images' and 'pairs': {err}") from err
        for name, entry in images.items():
            missing = {"image", "depth", "K", "T_cam_from_world"} - set(entry)
            if missing:
                raise ValueError(f"{path}: image {name!r} lacks {sorted(missing)}")
        for pair in pairs:
            if len(pair) != 2 or pair[0] not in images or pair[1] not in images:
                raise ValueError(f"{path}: pair {pair!r} must name two images of 'images'")
        return images, [(folder, str(a), str(b)) for a, b in pairs]

    @classmethod
    def from_scenes(cls, folders: Sequence[Union[str, Path]], conf: DepthDataConf = DepthDataConf(),
                    length: int = 0) -> "DepthPairs":
        scenes, pairs = {}, []
        for folder in folders:
            images, scene_pairs = cls.read_scene(folder, conf)
            scenes[Path(folder)] = images
            pairs += scene_pairs
        return cls(pairs, scenes, conf, length)

    def __len__(self) -> int:
        return self.length

    def _view(self, folder: Path, name: str
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """Image [H, W, 3] float, depth [H, W], K [3, 3], T_cam_from_world [4, 4] and field of
        view [H, W] bool (or None) of one image, shrunk to ``conf.resize``."""
        entry = self.scenes[folder][name]
        rgb = load_image(folder / entry["image"]).astype(np.float32) / 255.0
        depth = entry["depth"] if isinstance(entry["depth"], np.ndarray) else _read_depth(folder / entry["depth"])
        if depth.shape != rgb.shape[:2]:
            raise ValueError(f"depth of {folder / entry['image']} is {depth.shape}, the image is {rgb.shape[:2]}")
        roi = roi_from_file(folder / entry["roi"], rgb.shape[:2]) if entry.get("roi") else None
        K = np.asarray(entry["K"], np.float64)
        if self.conf.resize:  # the extractor's own shrink, as for users' images
            image, factors = shrink(torch.from_numpy(rgb.transpose(2, 0, 1))[None], self.conf.resize)
            rgb = np.ascontiguousarray(image[0].permute(1, 2, 0).numpy())
            S = scale_matrix(*factors)  # [3, 3]: input pixels to output pixels
            height, width = rgb.shape[:2]
            depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
            if roi is not None:
                roi = cv2.resize(roi.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
            K = S @ K
        return rgb, depth, K, np.asarray(entry["T_cam_from_world"], np.float64), roi

    def __getitem__(self, index: int) -> Dict[str, Any]:
        conf = self.conf
        rng = np.random.default_rng([conf.seed, int(index)])
        folder, name0, name1 = self.pairs[index % len(self.pairs)]
        (image0, depth0, K0, T0, roi0), (image1, depth1, K1, T1, roi1) = (self._view(folder, name0),
                                                                          self._view(folder, name1))
        if conf.photometric:
            image0, image1 = lg_augment(image0, rng), lg_augment(image1, rng)
        item = add_highlights(image0, image1, rng, conf.specular_probability, conf.placements)
        for k, roi in ((0, roi0), (1, roi1)):
            if roi is not None:  # no highlight outside the view
                item[f"roi{k}"] = torch.from_numpy(roi)
                item[f"specular_mask{k}"] = item[f"specular_mask{k}"] & item[f"roi{k}"]
        return {**item, "depth0": torch.from_numpy(depth0), "depth1": torch.from_numpy(depth1),
                "K0": torch.from_numpy(K0), "K1": torch.from_numpy(K1),
                "T_0to1": torch.from_numpy(T1 @ np.linalg.inv(T0)), "index": int(index)}


class MixedPairs(torch.utils.data.Dataset):
    """Items drawn from homography pairs or depth pairs: item ``index`` is a depth item with
    probability ``depth_share``, decided by ``(seed, index)``, and is then that dataset's item
    ``index`` (both are pure functions of the index, so resumes and processes agree)."""

    def __init__(self, homography: HomographyPairs, depth: DepthPairs, depth_share: float, length: int,
                 seed: int = 0) -> None:
        if not 0.0 <= depth_share <= 1.0:
            raise ValueError(f"depth_share must be in [0, 1], got {depth_share}")
        self.homography, self.depth, self.depth_share = homography, depth, float(depth_share)
        self.length, self.seed = int(length), int(seed)

    def __len__(self) -> int:
        return self.length

    def is_depth(self, index: int) -> bool:
        return bool(np.random.default_rng([self.seed, 4241, int(index)]).random() < self.depth_share)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        return (self.depth if self.is_depth(index) else self.homography)[index]


__all__ = ["DepthDataConf", "DepthPairs", "HomographyDataConf", "HomographyPairs", "MixedPairs", "add_highlights",
           "read_sfm_scene", "track_depth", "track_depth_at"]
