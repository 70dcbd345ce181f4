"""Ground-truth camera poses of an image sequence, from the two layouts users hold them in.

- **A COLMAP model** (:func:`read_colmap_poses`): a folder with ``cameras`` and ``images``
  (``.bin`` or ``.txt``), or a folder holding one as ``sparse/`` or ``sparse/0/``. Trackers
  and datasets such as C3VD are exported this way. Needs pycolmap (``specglue[colmap]``).
- **The endoscopy structure-from-motion layout** (:func:`read_endoscopy_sfm_poses`) of the
  sinus sequences of Liu et al. (TMI 2019): ``motion.yaml`` (one pose per registered view:
  ``position`` = camera centre ``c``, ``orientation`` = camera-to-world quaternion ``x y z w``,
  so ``x_cam = R^T (x_world - c)``), ``visible_view_indexes`` (the frame numbers of those
  poses, in order) and ``camera_intrinsics_per_view`` (either 4 numbers ``fx fy cx cy``
  shared by every view, or 3 numbers ``f cx cy`` per registered view). Frame ``k`` is the
  image whose file stem is ``k`` written with 8 digits (``00004584.jpg``).

Both give :class:`SequencePoses`: per image name its intrinsics ``K [3, 3]`` and its
world-to-camera pose ``T_cam_from_world [4, 4]`` (``X_cam = R X_world + t``).
:func:`read_sequence_poses` picks the reader from what the path holds. The endoscopy layout's
sparse points and their tracks (``structure.ply``, ``view_indexes_per_point``) are read by
:func:`read_endoscopy_sfm_points`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import numpy as np

from ..optional import require

PathLike = Union[str, Path]

#: files that mark the endoscopy layout
ENDOSCOPY_FILES = ("motion.yaml", "visible_view_indexes", "camera_intrinsics_per_view")
#: digits of the frame number in the endoscopy layout's file names
ENDOSCOPY_NAME_DIGITS = 8


@dataclass
class SequencePoses:
    """Known poses of a sequence's images.

    Attributes:
        K: image name -> ``[3, 3]`` intrinsics in pixels of the stored image.
        T_cam_from_world: image name -> ``[4, 4]`` world-to-camera pose.
        source: the file or folder they were read from (for messages).
    """

    K: Dict[str, np.ndarray]
    T_cam_from_world: Dict[str, np.ndarray]
    source: str

    @property
    def names(self) -> List[str]:
        """The image names, sorted."""
        return sorted(self.T_cam_from_world)

    def relative_pose(self, name0: str, name1: str) -> np.ndarray:
        """``T_0to1 [4, 4]``: ``X1 = R X0 + t`` from camera 0's frame to camera 1's."""
        return self.T_cam_from_world[name1] @ np.linalg.inv(self.T_cam_from_world[name0])

    def camera_centres(self) -> Dict[str, np.ndarray]:
        """Image name -> ``[3]`` camera centre in world coordinates."""
        return {n: -T[:3, :3].T @ T[:3, 3] for n, T in self.T_cam_from_world.items()}


def _pose(R_cam_from_world: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R_cam_from_world, t
    return T


def quaternion_to_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    """``[3, 3]`` rotation of a quaternion ``(x, y, z, w)`` (normalised here).

    Raises:
        ValueError: a zero or non-finite quaternion.
    """
    q = np.asarray(q_xyzw, dtype=np.float64).reshape(4)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f"quaternion {q.tolist()} is zero or not finite")
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _parse_motion_yaml(path: Path) -> List[np.ndarray]:
    """The ``[7]`` poses ``(cx, cy, cz, qx, qy, qz, qw)`` of a ``motion.yaml``, in file order.

    The file is ROS-style YAML (``poses[0]: position: x: ...``); it is read by pattern, not
    with a YAML library, so the core install reads it.
    """
    text = path.read_text()
    blocks = re.split(r"^\s*poses\[\d+\]:\s*$", text, flags=re.MULTILINE)[1:]
    poses = []
    for index, block in enumerate(blocks):
        values = {}
        for part in ("position", "orientation"):
            found = re.search(part + r":\s*((?:\s*[xyzw]:\s*\S+)+)", block)
            if found is None:
                raise ValueError(f"{path}: pose {index} has no {part}")
            values[part] = dict(re.findall(r"([xyzw]):\s*(\S+)", found.group(1)))
        try:
            centre = [float(values["position"][k]) for k in "xyz"]
            quat = [float(values["orientation"][k]) for k in "xyzw"]
        except (KeyError, ValueError) as err:
            raise ValueError(f"{path}: pose {index} is malformed ({err})") from None
        poses.append(np.asarray(centre + quat, dtype=np.float64))
    if not poses:
        raise ValueError(f"{path} holds no pose (expected 'poses[0]:' blocks)")
    return poses


def _read_numbers(path: Path, dtype: type) -> np.ndarray:
    try:
        return np.asarray(path.read_text().split(), dtype=dtype)
    except ValueError as err:
        raise ValueError(f"{path}: malformed number ({err})") from None


def read_endoscopy_sfm_poses(folder: PathLike, suffix: str = ".jpg") -> SequencePoses:
    """Poses of the endoscopy structure-from-motion layout (see the module docstring).

    Args:
        folder: the sequence folder holding ``motion.yaml`` and its companions.
        suffix: the image files' extension, for the names.

    Raises:
        ValueError: a missing or malformed file, or counts that do not agree.
    """
    folder = Path(folder)
    for name in ENDOSCOPY_FILES:
        if not (folder / name).is_file():
            raise ValueError(f"{folder} lacks {name}: not the endoscopy structure-from-motion layout")
    poses = _parse_motion_yaml(folder / "motion.yaml")
    frames = _read_numbers(folder / "visible_view_indexes", np.int64)
    if len(frames) != len(poses):
        raise ValueError(f"{folder}: visible_view_indexes lists {len(frames)} frames but motion.yaml "
                         f"holds {len(poses)} poses")
    intrinsics = _read_numbers(folder / "camera_intrinsics_per_view", np.float64)
    if intrinsics.size == 4:  # fx fy cx cy, shared
        per_view = np.tile(intrinsics, (len(frames), 1))
    elif intrinsics.size == 3 * len(frames):  # f cx cy per view
        f, cx, cy = intrinsics.reshape(-1, 3).T
        per_view = np.stack([f, f, cx, cy], axis=1)
    else:
        raise ValueError(f"{folder / 'camera_intrinsics_per_view'} holds {intrinsics.size} numbers; expected "
                         f"4 (fx fy cx cy) or 3 per registered view ({3 * len(frames)})")
    K, T = {}, {}
    for frame, pose, (fx, fy, cx, cy) in zip(frames, poses, per_view):
        name = f"{int(frame):0{ENDOSCOPY_NAME_DIGITS}d}{suffix}"
        R_world_from_cam = quaternion_to_matrix(pose[3:])
        R = R_world_from_cam.T
        T[name] = _pose(R, -R @ pose[:3])
        K[name] = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)
    return SequencePoses(K, T, str(folder))


def read_endoscopy_sfm_points(folder: PathLike) -> Tuple[np.ndarray, List[np.ndarray]]:
    """The sparse 3D points of the endoscopy layout and the frames that see each one.

    ``structure.ply`` (ASCII, x y z first on each vertex line) holds the points;
    ``view_indexes_per_point`` lists, for each point in PLY order, the frame numbers that see
    it, the lists separated by ``-1`` (the authors' files open with one and do not end with one).

    Returns:
        ``points`` [P, 3] in world coordinates and, per point, its frame numbers (int64 arrays).

    Raises:
        ValueError: a missing or malformed file, or counts that do not agree.
    """
    folder = Path(folder)
    for name in ("structure.ply", "view_indexes_per_point"):
        if not (folder / name).is_file():
            raise ValueError(f"{folder} lacks {name}: no structure-from-motion points")
    lines = (folder / "structure.ply").read_text().splitlines()
    try:
        count = int(next(line.split()[-1] for line in lines if line.startswith("element vertex")))
        start = lines.index("end_header") + 1
        points = np.array([[float(v) for v in line.split()[:3]] for line in lines[start:start + count]])
    except (StopIteration, ValueError, IndexError) as err:
        raise ValueError(f"{folder / 'structure.ply'} is not an ASCII PLY with x y z vertices ({err})") from None
    numbers = _read_numbers(folder / "view_indexes_per_point", np.int64)
    views = np.split(numbers, np.flatnonzero(numbers == -1))  # each chunk but the first opens with -1
    views = [chunk[1:] if chunk.size and chunk[0] == -1 else chunk for chunk in views]
    if views and not views[0].size:  # the file opens with -1
        views = views[1:]
    if points.shape != (count, 3) or len(views) != count:
        raise ValueError(f"{folder}: structure.ply holds {len(points)} points but view_indexes_per_point "
                         f"lists {len(views)}")
    return points, views


def find_colmap_model(path: PathLike) -> Path:
    """The folder of a COLMAP model: ``path`` itself, ``path/0``, ``path/sparse`` or ``path/sparse/0``.

    Raises:
        ValueError: none of them holds ``cameras`` and ``images`` (``.bin`` or ``.txt``).
    """
    path = Path(path)
    for folder in (path, path / "0", path / "sparse", path / "sparse" / "0"):
        if any((folder / f"cameras{ext}").is_file() and (folder / f"images{ext}").is_file()
               for ext in (".bin", ".txt")):
            return folder
    raise ValueError(f"{path} holds no COLMAP model (cameras and images, .bin or .txt, in it, in 0/, in sparse/ "
                     f"or in sparse/0/)")


def read_colmap_poses(path: PathLike) -> SequencePoses:
    """Poses and intrinsics of the registered images of a COLMAP model (see
    :func:`find_colmap_model`). Intrinsics are the camera's calibration matrix (distortion,
    if any, is not applied: give undistorted images).

    Raises:
        ValueError: no model, or a model without registered images.
        MissingDependency: pycolmap is not installed (``specglue[colmap]``).
    """
    pycolmap = require("pycolmap", "colmap", "reading a COLMAP model")
    folder = find_colmap_model(path)
    return reconstruction_poses(pycolmap.Reconstruction(str(folder)), str(folder))


def reconstruction_poses(model: Any, source: str) -> SequencePoses:
    """Poses and intrinsics of the registered images of an in-memory ``pycolmap.Reconstruction``
    (``source`` names it in messages).

    Raises:
        ValueError: the model has no registered image.
    """
    K, T = {}, {}
    for image in model.images.values():
        if not image.has_pose:
            continue
        pose = image.cam_from_world()
        T[image.name] = _pose(np.asarray(pose.rotation.matrix()), np.asarray(pose.translation))
        K[image.name] = np.asarray(image.camera.calibration_matrix(), dtype=np.float64)
    if not T:
        raise ValueError(f"the COLMAP model {source} has no registered image")
    return SequencePoses(K, T, source)


def read_sequence_poses(path: PathLike, suffix: str = ".jpg") -> SequencePoses:
    """Ground-truth poses from a COLMAP model or the endoscopy layout, chosen by content.

    Args:
        path: a COLMAP model folder (or one holding ``sparse/``), or an endoscopy sequence folder.
        suffix: image extension for the endoscopy layout's names.

    Raises:
        ValueError: the path is neither.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"ground truth {path} does not exist")
    if (path / "motion.yaml").is_file():
        return read_endoscopy_sfm_poses(path, suffix)
    return read_colmap_poses(path)


__all__ = [
    "SequencePoses",
    "find_colmap_model",
    "quaternion_to_matrix",
    "read_colmap_poses",
    "read_endoscopy_sfm_points",
    "read_endoscopy_sfm_poses",
    "read_sequence_poses",
    "reconstruction_poses",
]
