"""What every specglue HDF5 file shares: opening with errors that name the file, the settings
it was made with (a JSON root attribute) and the one guard that compares them, listing groups
by the dataset they hold, and copying a group between files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Union

import h5py

PathLike = Union[str, Path]

#: root attribute of a specglue file holding the settings it was made with (JSON)
SETTINGS_ATTR = "specglue"

#: link creation as h5py's: UTF-8 names, missing parent groups created
_CREATE_PARENTS = h5py.h5p.create(h5py.h5p.LINK_CREATE)
_CREATE_PARENTS.set_create_intermediate_group(True)
_CREATE_PARENTS.set_char_encoding(h5py.h5t.CSET_UTF8)


def open_h5(path: PathLike, mode: str = "r", what: str = "HDF5 file"):
    """Open an HDF5 file, turning h5py's errors into a ``ValueError`` that names the file.

    Args:
        what: what the file is, for the message (``"features file"``).
    """
    path = Path(path)
    if mode == "r" and not path.is_file():
        raise ValueError(f"{what} {path} does not exist")
    try:
        return h5py.File(path, mode, libver="latest")
    except OSError as err:
        raise ValueError(f"cannot read the {what} {path}: it is truncated, corrupt or not HDF5 ({err})") from err


def read_settings(h5file: Any) -> Dict[str, Any]:
    """The specglue settings of an open file, ``{}`` for a file made elsewhere (e.g. by hloc)."""
    raw = h5file.attrs.get(SETTINGS_ATTR)
    if raw is None:
        return {}
    return json.loads(raw if isinstance(raw, str) else raw.decode())


def write_settings(h5file: Any, settings: Mapping[str, Any]) -> None:
    h5file.attrs[SETTINGS_ATTR] = json.dumps(dict(settings), sort_keys=True, default=str)


def settings_changes(previous: Mapping[str, Any], current: Mapping[str, Any]) -> List[str]:
    """``"key: old -> new"`` for every key whose value differs (JSON-normalized, so a tuple
    equals the list it was stored as); empty when the settings agree."""
    previous, current = (json.loads(json.dumps(dict(s), default=str)) for s in (previous, current))
    return [f"{k}: {previous.get(k)!r} -> {current.get(k)!r}"
            for k in sorted(set(previous) | set(current)) if previous.get(k) != current.get(k)]


def check_settings(previous: Mapping[str, Any], current: Mapping[str, Any], what: str, hint: str) -> None:
    """The settings guard: refuse to add to a file made with other settings.

    Args:
        previous: the settings recorded in the file ({}: nothing recorded, nothing to refuse).
        what: the file, for the message (``"features file out/features.h5"``).
        hint: what the user can do instead (``"pass --overwrite to replace it"``).

    Raises:
        ValueError: naming every setting that changed, with its old and new value.
    """
    changes = settings_changes(previous, current) if previous else []
    if changes:
        raise ValueError(f"{what} was made with other settings ({'; '.join(changes)}): {hint}")


def leaf_groups(h5file: Any, dataset: str) -> List[str]:
    """The paths of every group of an open file that holds a dataset named ``dataset``.

    Walks the objects by name and type only (``H5Ovisit``), opening none: several times
    faster than h5py's ``visititems`` on a file of many small groups.
    """
    found: List[str] = []

    def visit(raw_name: bytes, info: Any) -> None:
        name = raw_name.decode("utf-8")
        if info.type == h5py.h5o.TYPE_DATASET and name.rsplit("/", 1)[-1] == dataset:
            found.append(name.rsplit("/", 1)[0] if "/" in name else "")

    h5py.h5o.visit(h5file.id, visit, info=True)
    return sorted(found)


def copy_group(src: Any, dst: Any, key: str) -> None:
    """Copy the group ``key`` (which may contain ``/``) of one open file into another, replacing
    one already there; missing parent groups are created. One ``H5Ocopy``, no h5py objects."""
    name = key.encode("utf-8")
    try:
        h5py.h5o.copy(src.id, name, dst.id, name, None, _CREATE_PARENTS)
    except RuntimeError:  # HDF5: "destination object already exists"
        if key not in dst:
            raise
        del dst[key]
        h5py.h5o.copy(src.id, name, dst.id, name, None, _CREATE_PARENTS)


def check_writable(out_path: Path) -> None:
    """Refuse early an output whose folder cannot be created or written."""
    folder = Path(out_path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{Path(out_path).name}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"cannot write to the output folder {folder} ({err.strerror or err})") from err


__all__ = ["SETTINGS_ATTR", "check_settings", "check_writable", "copy_group", "leaf_groups", "open_h5",
           "read_settings", "settings_changes", "write_settings"]
