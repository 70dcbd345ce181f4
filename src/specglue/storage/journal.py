"""Crash-safe, resumable HDF5 output: finished work goes to small part files, merged in batches.

hloc appends to the open output file, so a process killed during a write can leave it corrupt
and lose everything. Here the output file itself is only ever replaced whole:

- while a run works, each finished chunk (a few images or pairs) is written to a new file
  ``<out>.parts/part-*.h5.tmp`` and renamed to ``part-*.h5`` once closed; a rename is atomic,
  so a part is either whole or absent, whatever moment the process is killed at;
- :meth:`PartJournal.merge` folds the parts into the output and deletes them (below);
- a rerun (:meth:`PartJournal.done`) counts what the output and the parts already hold and
  does only the rest; leftover temporaries of a killed run are deleted.

Merging costs what the parts cost, not the whole output: a second copy of the output, its
*shadow* ``.<out>.shadow`` in the same folder, is kept up to date alongside it, so the disk
holds the output twice. Both carry the same random *generation* in the root attribute
``specglue_generation``, new at each merge, and the shadow records the inode, size and
modification time of the output it mirrors (so an output edited or replaced by anyone else
is never merged over). A merge

1. renames the shadow to ``.<out>.next`` -- or, when it is missing, unreadable or does not
   mirror the output (the first merge, after a crash, after an outside edit), copies the
   whole output there instead;
2. appends the parts to ``.<out>.next`` in place, with a new generation;
3. hard-links the output as ``.<out>.prev`` and renames ``.<out>.next`` over the output;
4. appends the same parts to ``.<out>.prev`` (the previous output), which becomes the new
   shadow through a rename;
5. deletes the parts.

The output is never written in place (only the hidden files are) and each step ends with a
rename, so the output is always the previous merge's or this one's, whole. The parts are
deleted only once the output holds them, and the shadow too unless there is none. A process
killed at any moment thus loses nothing: a rerun deletes ``.<out>.next`` and ``.<out>.prev``
(maybe half-written), finds the parts' items in the output or the parts, and, where step 4
did not finish, copies the output into a new shadow at its first merge. Where hard links are
refused (some file systems), step 3 only renames, and every merge copies the whole output.

A reader that holds the output open across a merge keeps the previous output: HDF5's file
lock makes step 4 fail on it (the next merge then copies the output instead); with
``HDF5_USE_FILE_LOCKING=FALSE`` it would see that file change under it. The same parts carry
the results of Ray workers (see :mod:`specglue.collection.engine`) and the evaluation's caches (:mod:`specglue.eval.cache`). Power loss is not covered
(no fsync).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Union

from .h5 import copy_group, leaf_groups, open_h5, read_settings, write_settings

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: root attribute of the output and its shadow: a random id, new at each merge
GENERATION_ATTR = "specglue_generation"
#: root attribute of the shadow: the (inode, size, mtime in ns) of the output it mirrors, JSON
MIRRORS_ATTR = "specglue_shadow_of"

class PartJournal:
    """The part files of one output file, and its shadow copy.

    Args:
        out_path: the HDF5 output (features or matches file).
        leaf_dataset: a dataset every finished item's group holds (``"keypoints"`` for
            features, ``"matches0"`` for matches): it says which groups are finished items.
        what: what the file is, for messages (``"features file"``).
    """

    def __init__(self, out_path: PathLike, leaf_dataset: str, what: str) -> None:
        self.out_path = Path(out_path)
        self.parts_dir = self.out_path.with_name(self.out_path.name + ".parts")
        self.shadow_path = self.out_path.with_name(f".{self.out_path.name}.shadow")
        self.leaf_dataset = leaf_dataset
        self.what = what
        # the shadow growing into the next output, and the replaced output growing into the next shadow
        self._next_path = self.out_path.with_name(f".{self.out_path.name}.next")
        self._prev_path = self.out_path.with_name(f".{self.out_path.name}.prev")
        self._warned_no_links = False

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
        """The item group names the output and its parts already hold; deletes stale temporaries
        (half-written parts, and the files of a merge that was killed).

        Raises:
            ValueError: the output or a part is not a readable HDF5 file (naming it).
        """
        for stale in self.parts_dir.glob("*.tmp") if self.parts_dir.is_dir() else ():
            stale.unlink()
        self._remove_merge_leftovers()
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
        """Fold the parts into the output file (replaced whole through a rename); returns it.

        Writes the parts twice (into the output and into its shadow); copies the whole output
        only when the shadow does not mirror it (see the module's description).

        Raises:
            ValueError: the output is not a readable HDF5 file.
        """
        parts = self.parts()
        had_output = self.out_path.is_file()
        if not parts and had_output:
            return self.out_path
        self._remove_merge_leftovers()
        if had_output:
            self._shadow_to_next()
        else:
            self.shadow_path.unlink(missing_ok=True)
        generation, contents = uuid.uuid4().hex, {}
        self._fold(self._next_path, parts, contents, settings, generation)
        keep_previous = not had_output or self._link_output_as_previous()
        os.replace(self._next_path, self.out_path)
        if keep_previous:
            self._previous_to_shadow(parts, contents, settings, generation)
        for part in parts:
            part.unlink()
        if self.parts_dir.is_dir() and not any(self.parts_dir.iterdir()):
            self.parts_dir.rmdir()
        logger.info("merged %d parts into %s", len(parts), self.out_path)
        return self.out_path

    def discard(self) -> None:
        """Delete the output, its shadow and its parts (``--overwrite``)."""
        if self.parts_dir.is_dir():
            shutil.rmtree(self.parts_dir)
        self._remove_merge_leftovers()
        self.shadow_path.unlink(missing_ok=True)
        self.out_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ merge steps
    def _remove_merge_leftovers(self) -> None:
        """Delete the temporaries of a merge that was killed (never the output: a link to it
        left as ``.prev`` is only a second name)."""
        self._next_path.unlink(missing_ok=True)
        self._prev_path.unlink(missing_ok=True)

    def _output_stamp(self) -> str:
        """What identifies this version of the output file: inode, size, modification time."""
        stat = self.out_path.stat()
        return json.dumps([stat.st_ino, stat.st_size, stat.st_mtime_ns])

    def _shadow_staleness(self) -> Optional[str]:
        """Why the shadow does not mirror the output, or None when it does.

        Raises:
            ValueError: the output is not a readable HDF5 file.
        """
        if not self.shadow_path.is_file():
            return "no shadow"
        with self._open(self.out_path) as out:
            generation = out.attrs.get(GENERATION_ATTR)
        try:
            with open_h5(self.shadow_path, "r", "shadow") as shadow:
                shadow_generation, mirrors = shadow.attrs.get(GENERATION_ATTR), shadow.attrs.get(MIRRORS_ATTR)
        except ValueError:
            return "the shadow is unreadable"
        if generation is None or shadow_generation != generation:
            return "the shadow is of another generation"
        if mirrors != self._output_stamp():
            return "the output was changed or replaced since"
        return None

    def _shadow_to_next(self) -> None:
        """Step 1: the shadow becomes ``.next``, or else a copy of the whole output."""
        staleness = self._shadow_staleness()
        if staleness is None:
            os.replace(self.shadow_path, self._next_path)
            return
        logger.info("copying the whole %s %s to start its shadow (%s)", self.what, self.out_path, staleness)
        self.shadow_path.unlink(missing_ok=True)
        shutil.copyfile(self.out_path, self._next_path)

    def _fold(self, path: Path, parts: List[Path], contents: Dict[Path, List[str]], settings: Dict[str, Any],
              generation: str, mirrors: Optional[str] = None) -> None:
        """Append the parts' items to ``path`` in place (created if missing), tagged ``generation``.

        Args:
            contents: each part's items, filled in here when missing (listed once per merge).
        """
        with open_h5(path, "a", self.what) as dst:
            write_settings(dst, settings)
            for part in parts:
                with open_h5(part, "r", self.what) as src:
                    if part not in contents:
                        contents[part] = leaf_groups(src, self.leaf_dataset)
                    for key in contents[part]:
                        copy_group(src, dst, key)
            dst.attrs[GENERATION_ATTR] = generation
            if mirrors is not None:
                dst.attrs[MIRRORS_ATTR] = mirrors

    def _link_output_as_previous(self) -> bool:
        """Step 3: a second name for the output about to be replaced; False without hard links."""
        try:
            os.link(self.out_path, self._prev_path)
            return True
        except OSError as err:
            if not self._warned_no_links:
                logger.warning("cannot hard-link %s (%s): every merge copies the whole %s",
                               self.out_path, err.strerror or err, self.what)
                self._warned_no_links = True
            return False

    def _previous_to_shadow(self, parts: List[Path], contents: Dict[Path, List[str]], settings: Dict[str, Any],
                            generation: str) -> None:
        """Step 4: the previous output, given the same parts, becomes the shadow of the new one.
        When it cannot be written (a reader holds it open, the disk is full), there is no shadow
        and the next merge copies the output."""
        try:
            self._fold(self._prev_path, parts, contents, settings, generation, mirrors=self._output_stamp())
        except (OSError, ValueError) as err:  # open_h5's ValueError names the file; h5py's error says why
            logger.warning("could not bring the previous %s up to date as the shadow of %s (%s): "
                           "the next merge copies the whole file", self.what, self.out_path, err.__cause__ or err)
            self._prev_path.unlink(missing_ok=True)
            return
        os.replace(self._prev_path, self.shadow_path)


__all__ = ["PartJournal"]
