"""A benchmark's results: printed, and with ``--out`` written to OUT.md (a title, the command
that made it, the tables) and OUT.json (the numbers), each whole (temporary file, then rename)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

from specglue.atomic import atomic_write_text


def write_report(out: Optional[Path], title: str, body: str, data: Any) -> None:
    """Prints ``body``; writes ``out`` with suffixes .md and .json unless ``out`` is None (the
    command recorded is this process's own)."""
    print("\n" + body)
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    atomic_write_text(out.with_suffix(".md"), f"# {title}\n\nCommand: `{command}`\n\n{body}\n")
    atomic_write_text(out.with_suffix(".json"), json.dumps(data, indent=1))
