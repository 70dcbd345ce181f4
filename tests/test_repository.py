"""What ships in the repository names no machine (no absolute path in source, docs or results),
and how its modules import each other."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def _module_imports() -> dict:
    """Each module of src/specglue and the specglue modules it imports at module level."""
    import ast

    src = ROOT / "src"
    modules = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (src / "specglue").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.parse(path.read_text()).body:  # module level only: imports in functions are lazy
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    found.add(target if target in modules else base)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_no_import_cycle():
    graph = _module_imports()
    assert "specglue.storage.journal" in graph and "specglue.storage.h5" in graph["specglue.storage.journal"]
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_argparse_only_in_the_cli():
    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "src").rglob("*.py") if "argparse" in p.read_text())
    assert users == ["src/specglue/cli.py"]


def test_training_loads_the_eval_metrics_alone():
    """The training loop reads its label metrics from ``eval.metrics``; that must not load the
    evaluation runner, its methods and benchmarks (the package's registries are lazy)."""
    code = ("import sys, specglue.train.loop; "
            "print(sorted(m for m in sys.modules if m.startswith('specglue.eval')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert ast.literal_eval(out) == ["specglue.eval", "specglue.eval.metrics"], out
    from specglue import eval as sg_eval

    assert "homography" in sg_eval.BENCHMARKS and "specglue-cross" in sg_eval.METHOD_NAMES
    with pytest.raises(AttributeError):
        sg_eval.NOT_A_REGISTRY
