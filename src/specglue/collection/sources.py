"""Where a collection's images come from: a folder (recursive) or a video file.

Both give image names and RGB frames. Folder images are named by their path relative to the
folder (``sub/img.jpg``); video frames by their index, ``frame_000120.png`` (the name they get
when :func:`write_frames` saves them, so that COLMAP finds them), with ``every`` keeping one
frame in ``every``.

A folder whose images are frames of one video is a *sequence* (``kind == "sequence"``): at
least :data:`MIN_SEQUENCE_FRAMES` images directly in it named by one pattern, a fixed prefix, a
frame number and one suffix (``00004584.jpg``, ``frame_0012.png``), making up all of its images
or all but a few (:data:`MAX_SEQUENCE_OTHERS`: a mask or a preview saved beside the frames).
Those others are left out, with a warning naming them. Sequences get one camera and the video
mapping preset (:mod:`specglue.collection.reconstruct`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional, Set, Tuple, Union

import logging
import re

import cv2
import numpy as np

from ..atomic import atomic_write
from ..images import list_images, load_image

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: file suffixes read as videos
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v")


#: the fewest numbered images that make a folder a sequence
MIN_SEQUENCE_FRAMES = 3
#: the most images off the frames' pattern that a sequence folder may hold (left out)
MAX_SEQUENCE_OTHERS = 2
_NUMBERED = re.compile(r"^(?P<prefix>[^/]*?)(?P<number>[0-9]+)(?P<suffix>\.[A-Za-z0-9]+)$")


def sequence_frames(names: List[str]) -> Optional[List[str]]:
    """The frames among a folder's image names when they make a sequence (see the module doc),
    in frame-number order; None otherwise."""
    groups: dict = {}
    for name in names:
        found = _NUMBERED.match(name)
        if found:
            key = (found["prefix"], found["suffix"].lower())
            groups.setdefault(key, []).append((int(found["number"]), name))
    if not groups:
        return None
    frames = max(groups.values(), key=len)
    if len(frames) < MIN_SEQUENCE_FRAMES or len(names) - len(frames) > MAX_SEQUENCE_OTHERS:
        return None
    return [name for _, name in sorted(frames)]


def frame_name(index: int) -> str:
    """The image name of video frame ``index``."""
    return f"frame_{index:06d}.png"


class ImageSource:
    """A folder of images or a video, read in order; ``kind`` is ``"folder"``, ``"sequence"``
    (a folder of numbered frames, see the module doc) or ``"video"``.

    Args:
        path: an image folder or a video file.
        every: keep one video frame in ``every`` (video only; ``>= 1``).

    Raises:
        ValueError: the folder does not exist or holds no image, the file is not a video
            OpenCV can open, or ``every < 1``.
    """

    def __init__(self, path: PathLike, every: int = 1) -> None:
        self.path = Path(path)
        if int(every) < 1:
            raise ValueError(f"every must be >= 1 frame, got {every}")
        self.every = int(every)
        if self.path.is_dir():
            files = list_images(self.path)  # raises ValueError when there is none
            names = [p.relative_to(self.path).as_posix() for p in files]
            frames = sequence_frames(names)
            self.kind = "folder" if frames is None else "sequence"
            if frames is not None and len(frames) < len(names):
                others = sorted(set(names) - set(frames))
                logger.warning("%s is a sequence of %d numbered frames; left out %d other image(s): %s",
                               self.path, len(frames), len(others), ", ".join(others))
            chosen = names if frames is None else frames
            file_of = dict(zip(names, files))
            self._names, self._files = chosen, [file_of[n] for n in chosen]
        elif self.path.is_file():
            self.kind = "video"
            if self.path.suffix.lower() not in VIDEO_SUFFIXES:
                raise ValueError(f"{self.path} is neither an image folder nor a video "
                                 f"({', '.join(VIDEO_SUFFIXES)})")
            capture = self._open_video()
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            capture.release()
            self._names = [frame_name(i) for i in range(0, max(count, 0), self.every)]
        else:
            raise ValueError(f"image folder or video {self.path} does not exist")

    def _open_video(self) -> "cv2.VideoCapture":
        capture = cv2.VideoCapture(str(self.path))
        ok, _ = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            capture.release()
            raise ValueError(f"cannot open the video {self.path}: OpenCV reads no frame from it")
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return capture

    def names(self) -> List[str]:
        """The image names in sequence order (for a video, from the frame count its header
        gives; :meth:`frames` yields the frames actually decoded)."""
        return list(self._names)

    def sample(self, count: int) -> List[np.ndarray]:
        """Up to ``count`` frames (rgb uint8 ``[H, W, 3]``) spread evenly over the source, first
        and last included (a video is seeked, not read through)."""
        n = min(int(count), len(self._names))
        picks = sorted({round(i * (len(self._names) - 1) / max(n - 1, 1)) for i in range(n)})
        if self.kind != "video":
            return [load_image(self._files[i], self._names[i]) for i in picks]
        capture = self._open_video()
        frames = []
        try:
            for i in picks:
                capture.set(cv2.CAP_PROP_POS_FRAMES, i * self.every)
                ok, bgr = capture.read()
                if ok:
                    frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        finally:
            capture.release()
        return frames

    def frames(self, skip: Optional[Set[str]] = None) -> Iterator[Tuple[str, np.ndarray]]:
        """``(name, rgb uint8 [H, W, 3])`` in order, leaving out the names in ``skip`` (they
        are not decoded; video frames are still read through, as video has no cheap seek)."""
        skip = skip or set()
        if self.kind != "video":
            for name, file in zip(self._names, self._files):
                if name not in skip:
                    yield name, load_image(file, name)
            return
        capture = self._open_video()
        index = 0
        try:
            while True:
                if index % self.every == 0 and frame_name(index) not in skip:
                    ok, bgr = capture.read()
                    if not ok:
                        break
                    yield frame_name(index), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                elif not capture.grab():
                    break
                index += 1
        finally:
            capture.release()


def _write_png(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise ValueError(f"cannot write {path}")


def write_frames(source: ImageSource, image_dir: PathLike) -> List[str]:
    """Save the frames of a video source as PNG files named by :func:`frame_name` (frames
    already there are kept); returns the names. Each file is written then renamed."""
    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    existing = {p.name for p in image_dir.glob("frame_*.png")}
    names = []
    for name, rgb in source.frames(skip=existing):
        atomic_write(image_dir / name, lambda tmp: _write_png(tmp, rgb))
        names.append(name)
    return sorted(existing | set(names))


__all__ = ["ImageSource", "MAX_SEQUENCE_OTHERS", "MIN_SEQUENCE_FRAMES", "VIDEO_SUFFIXES", "frame_name",
           "sequence_frames", "write_frames"]
