"""Evaluation: every benchmark runs through one runner in two loops (export, then score).

Features and predictions of every method are exported to HDF5 caches in ``out_dir``
(resumable, fingerprinted), then scored into ``results.json``, ``table.md`` and
``plots/*.png``; :func:`rescore` reruns only the scoring.

======================  =================================================================
module                  what it is
======================  =================================================================
``runner``              the two loops, reports, rescore (:class:`Benchmark`)
``cache``               the pair features and predictions (crash-safe part files, fingerprinted)
``data``                the shared photo folder, synthetic highlights, pair names
``benchmarks/<name>``   one benchmark each: ``homography``, ``hpatches``, ``pose``,
                        ``rotation`` (registry: :data:`BENCHMARKS`)
``methods/<name>``      one matcher family each (registry: :data:`METHODS`)
``metrics``, ``report`` pure per-pair metrics and aggregation; tables, JSON, plots
======================  =================================================================

Library use::

    from specglue import eval
    results = eval.run("homography", features="aliked", num_homographies=2, specular="camera_fixed")
    results["table"]    # Markdown, one row per method
    results["summary"]  # {method: {"prec@3px": ..., "auc_ransac@3px": ..., ...}}
    eval.rescore(results["config"]["out_dir"])
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

if TYPE_CHECKING:
    from .runner import Benchmark

#: the registries, imported on first use: ``from specglue.eval.metrics import ...`` (training's
#: label metrics) then loads the metrics alone, not the runner, the methods and the benchmarks
_REGISTRIES = {"BENCHMARKS": ".benchmarks", "METHODS": ".methods", "METHOD_NAMES": ".methods"}


def __getattr__(name: str) -> Any:
    if name in _REGISTRIES:
        return getattr(importlib.import_module(_REGISTRIES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_benchmark(name: str) -> "Benchmark":
    """The registered benchmark ``name``.

    Raises:
        ValueError: no benchmark has that name.
    """
    from .benchmarks import BENCHMARKS

    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]


def run(benchmark: str, **kwargs: Any) -> Dict[str, Any]:
    """Run the benchmark ``benchmark`` (both loops); see :func:`specglue.eval.runner.run`."""
    from . import runner

    return runner.run(get_benchmark(benchmark), **kwargs)


def rescore(out_dir: Union[str, Path], method_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Score the caches of a finished run again (no matching) and rewrite its reports."""
    from . import runner

    name = runner.read_results(out_dir)["benchmark"]
    return runner.rescore(out_dir, get_benchmark(name), method_names)


__all__ = ["BENCHMARKS", "METHODS", "METHOD_NAMES", "get_benchmark", "rescore", "run"]
