"""Crash-safe, resumable HDF5 output: finished work goes to small part files, merged at the end.

hloc appends to the open output file, so a process killed during a write can leave it corrupt
and lose everything. Here the output file itself is only ever replaced whole:

- while a run works, each finished chunk (a few images or pairs) is written to a new file
  ``<out>.parts/part-*.h5.tmp`` and renamed to ``part-*.h5`` once closed; a rename is atomic,
  so a part is either whole or absent, whatever moment the process is killed at;
- :meth:`PartJournal.merge` copies the existing output and every part into
  ``<out>.tmp``, renames it over ``<out>`` and deletes the parts;
- a rerun (:meth:`PartJournal.done`) counts what the output and the parts already hold and
  does only the rest; leftover ``*.tmp`` files of a killed run are deleted.

A killed run thus leaves the previous output readable and untouched, and loses at most the
chunk it was computing. The same parts carry the results of Ray workers (see
:mod:`specglue.collection.engine`). Power loss is not covered (no fsync of the parts).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Set, Union

from .hloc_io import leaf_groups, open_h5, read_settings, write_settings

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


class PartJournal:
    """The part files of one output file.

    Args:
        out_path: the HDF5 output (features or matches file).
        leaf_dataset: a dataset every finished item's group holds (``"keypoints"`` for
            features, ``"matches0"`` for matches): it says which groups are finished items.
        what: what the file is, for messages (``"features file"``).
    """

    def __init__(self, out_path: PathLike, leaf_dataset: str, what: str) -> None:
        self.out_path = Path(out_path)
        self.parts_dir = self.out_path.with_name(self.out_path.name + ".parts")
        self.leaf_dataset = leaf_dataset
        self.what = what

    # ------------------------------------------------------------------ state
    def parts(self) -> List[Path]:
        """The finished part files, oldest first."""
        if not self.parts_dir.is_dir():
            return []
        return sorted(self.parts_dir.glob("part-*.h5"), key=lambda p: (p.stat().st_mtime_ns, p.name))

    def settings(self) -> Dict[str, Any]:
        """The settings recorded in the output file, or else in the first part ({} if none).

        Raises:
            ValueError: the output exists but was not written by specglue (e.g. by hloc), so
                adding to it could mix results made in other ways.
        """
        for path in ([self.out_path] if self.out_path.is_file() else []) + self.parts()[:1]:
            with self._open(path) as f:
                settings = read_settings(f)
                if not settings and leaf_groups(f, self.leaf_dataset):
                    raise ValueError(f"{self.what} {path} was not written by specglue and its settings are "
                                     "unknown: write to another file, or pass --overwrite to replace it")
                return settings
        return {}

    def done(self) -> Set[str]:
        """The item group names the output and its parts already hold; deletes stale temporaries.

        Raises:
            ValueError: the output or a part is not a readable HDF5 file (naming it).
        """
        for stale in self.parts_dir.glob("*.tmp") if self.parts_dir.is_dir() else ():
            stale.unlink()
        keys: Set[str] = set()
        for path in ([self.out_path] if self.out_path.is_file() else []) + self.parts():
            with self._open(path) as f:
                keys.update(leaf_groups(f, self.leaf_dataset))
        return keys

    def _open(self, path: Path) -> Any:
        """An existing output or part, read-only; the error says how to start again."""
        try:
            return open_h5(path, "r", self.what)
        except ValueError as err:
            raise ValueError(f"{err}; move it away, or pass --overwrite to start again") from err

    # ------------------------------------------------------------------ writing
    def write_part(self, settings: Dict[str, Any], write: Callable[[Any], None]) -> Path:
        """Write one part: ``write(h5file)`` fills it; it appears only once complete."""
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.h5"
        tmp = self.parts_dir / (name + ".tmp")
        with open_h5(tmp, "w", self.what) as f:
            write_settings(f, settings)
            write(f)
        final = self.parts_dir / name
        os.replace(tmp, final)
        return final

    def merge(self, settings: Dict[str, Any]) -> Path:
        """Fold the parts into the output file (replaced whole through a rename); returns it."""
        parts = self.parts()
        if not parts and self.out_path.is_file():
            return self.out_path
        tmp = self.out_path.with_name(self.out_path.name + ".tmp")
        if self.out_path.is_file():
            shutil.copyfile(self.out_path, tmp)
            mode = "a"
        else:
            mode = "w"
        with open_h5(tmp, mode, self.what) as dst:
            write_settings(dst, settings)
            for part in parts:
                with open_h5(part, "r", self.what) as src:
                    for key in leaf_groups(src, self.leaf_dataset):
                        copy_group(src, dst, key)
        os.replace(tmp, self.out_path)
        for part in parts:
            part.unlink()
        if self.parts_dir.is_dir() and not any(self.parts_dir.iterdir()):
            self.parts_dir.rmdir()
        logger.info("merged %d parts into %s", len(parts), self.out_path)
        return self.out_path

    def discard(self) -> None:
        """Delete the output and its parts (``--overwrite``)."""
        if self.parts_dir.is_dir():
            shutil.rmtree(self.parts_dir)
        self.out_path.unlink(missing_ok=True)


def check_writable(out_path: Path) -> None:
    """Refuse early an output whose folder cannot be created or written."""
    folder = out_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{out_path.name}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"cannot write to the output folder {folder} ({err.strerror or err})") from err


def copy_group(src: Any, dst: Any, key: str) -> None:
    """Copy the group ``key`` (which may contain ``/``) of one open file into another."""
    if key in dst:
        del dst[key]
    parent, _, leaf = key.rpartition("/")
    target = dst.require_group(parent) if parent else dst
    target.copy(src[key], leaf)


__all__ = ["PartJournal", "check_writable", "copy_group"]
