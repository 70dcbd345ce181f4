"""What ships in the repository names no machine: no absolute path in source, docs or results."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# an absolute path into a home, work or temporary folder, as a string or in prose
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:work|home|root|Users|tmp|check|mnt|opt|var)/\w")
SUFFIXES = {".py", ".md", ".json", ".yaml", ".txt", ".toml", ".cfg"}


def test_no_machine_paths_in_source_docs_or_results():
    folders = [ROOT / "src", ROOT / "docs", ROOT / "benchmarks", ROOT / "configs"]
    files = [ROOT / "README.md"] + [p for folder in folders for p in folder.rglob("*")
                                    if p.suffix in SUFFIXES and p.is_file() and ".egg-info" not in str(p)]
    assert len(files) > 50
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()[:120]}" for p in files
             for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if MACHINE_PATH.search(line)]
    assert not found, "\n".join(found)
