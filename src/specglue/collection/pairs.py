"""Which images to match: pair lists in hloc's format (``name0 name1`` per line).

- :func:`exhaustive_pairs`: every unordered pair (hloc's ``pairs_from_exhaustive``), for photo
  collections of up to a few hundred images.
- :func:`sequential_pairs`: for video. Frame ``i`` is paired with the ``window`` frames after
  it; with ``quadratic`` also with frames ``i + 2**k`` beyond the window (k = 0, 1, ...), which
  links distant parts of a slow sequence at a logarithmic cost; with ``loop_every=N``, every
  N-th frame (a keyframe) is paired with every other keyframe, the loop-closure candidates
  when no retrieval is available.
- :func:`read_pairs` / :func:`write_pairs`: the text file, checked (written through a temporary
  file and a rename).

Names are image names as stored in a features file (paths relative to the image folder, or
video frame names); the order of ``names`` is the sequence order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Set, Tuple, Union

from ..atomic import atomic_write_text
from ..storage import leaf_groups, open_h5, read_settings

PathLike = Union[str, Path]
Pair = Tuple[str, str]


def image_names(source: PathLike) -> List[str]:
    """The image names of ``source`` in sequence order: a folder of images (as
    :class:`~specglue.collection.sources.ImageSource` reads it: paths relative to it, recursive,
    sorted, or the frames of a sequence by frame number) or an HDF5 features file in hloc's
    layout (every group holding ``keypoints``; sorted, or by frame number when it was
    extracted from a video or a sequence).

    Raises:
        ValueError: the folder or file is missing, holds no image, or is not a readable HDF5 file.
    """
    from .sources import ImageSource, sequence_frames

    source = Path(source)
    if source.is_dir():
        return ImageSource(source).names()
    if not source.is_file():
        raise ValueError(f"{source} is neither an image folder nor a features file")
    with open_h5(source, "r", "features file") as f:
        names = sorted(leaf_groups(f, "keypoints"))
        kind = read_settings(f).get("source_kind")
    if not names:
        raise ValueError(f"features file {source} holds no image (no group with keypoints)")
    frames = sequence_frames(names) if kind in ("sequence", "video") else None
    return frames if frames is not None and len(frames) == len(names) else names


def exhaustive_pairs(names: Sequence[str]) -> List[Pair]:
    """Every unordered pair ``(names[i], names[j])``, ``i < j``, in order."""
    _check_names(names)
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]


def sequential_pairs(names: Sequence[str], window: int, quadratic: bool = False,
                     loop_every: Optional[int] = None) -> List[Pair]:
    """Pairs of a sequence (see the module doc); each unordered pair once, ``i < j``.

    Raises:
        ValueError: ``window < 1``, ``loop_every < 2`` or repeated names.
    """
    _check_names(names)
    if int(window) < 1:
        raise ValueError(f"window must be >= 1 frame, got {window}")
    if loop_every is not None and int(loop_every) < 2:
        raise ValueError(f"loop_every must be >= 2 frames, got {loop_every}")
    n = len(names)
    offsets: Set[int] = set(range(1, int(window) + 1))
    if quadratic:
        step = 1
        while step < n:
            offsets.add(step)
            step *= 2
    index_pairs = {(i, i + d) for i in range(n) for d in offsets if i + d < n}
    if loop_every is not None:
        keyframes = range(0, n, int(loop_every))
        index_pairs |= {(i, j) for i in keyframes for j in keyframes if i < j}
    return [(names[i], names[j]) for i, j in sorted(index_pairs)]


def read_pairs(path: PathLike, known: Optional[Iterable[str]] = None, source: str = "the images"
               ) -> List[Pair]:
    """Read a pairs file: one ``name0 name1`` per line; blank lines and ``#`` comments skipped.

    Args:
        known: if given, every name must be one of these (e.g. the images of a features file).
        source: what ``known`` is, for the message.

    Raises:
        ValueError: naming the file and line when a line does not hold two names, a pair
            repeats a name, or a name is unknown.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pairs file {path} does not exist")
    known_set = None if known is None else set(known)
    pairs: List[Pair] = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"{path}:{lineno}: expected two image names, got {len(fields)} fields")
        if fields[0] == fields[1]:
            raise ValueError(f"{path}:{lineno}: pairs an image with itself ({fields[0]})")
        if known_set is not None:
            unknown = [f for f in fields if f not in known_set]
            if unknown:
                raise ValueError(f"{path}:{lineno}: image {unknown[0]!r} is not among {source} "
                                 f"({len(known_set)} known)")
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise ValueError(f"pairs file {path} holds no pair")
    return pairs


def write_pairs(pairs: Sequence[Pair], path: PathLike) -> Path:
    """Write ``pairs`` in hloc's format through a temporary file and a rename."""
    for a, b in pairs:
        if any(c.isspace() for c in a + b):
            raise ValueError(f"image names with white space cannot go in a pairs file: {a!r}, {b!r}")
    return atomic_write_text(path, "".join(f"{a} {b}\n" for a, b in pairs))


def _check_names(names: Sequence[str]) -> None:
    seen: Set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"image name {name!r} appears twice")
        seen.add(name)


__all__ = ["exhaustive_pairs", "image_names", "read_pairs", "sequential_pairs", "write_pairs"]
