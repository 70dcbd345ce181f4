"""Crash-safe writes: the old file or the new one, never half of one, and nothing left behind."""

import pytest

from specglue.atomic import atomic_write, atomic_write_text


def test_a_write_replaces_the_file_and_a_failed_one_leaves_it_as_it_was(tmp_path):
    path = tmp_path / "sub" / "table.md"
    assert atomic_write_text(path, "first\n") == path and path.read_text() == "first\n"
    seen = []

    def failing(tmp):
        seen.append(tmp)
        tmp.write_text("half of the seco")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, failing)
    assert path.read_text() == "first\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.md"]  # the temporary file is gone
    assert seen[0].parent == path.parent and seen[0].suffix == ".md" and seen[0].name.startswith(".")
    atomic_write_text(path, "second\n")
    assert path.read_text() == "second\n" and len(list(path.parent.iterdir())) == 1
