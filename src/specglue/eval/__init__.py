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

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from . import runner
from .benchmarks import BENCHMARKS
from .methods import METHOD_NAMES, METHODS
from .runner import Benchmark


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name``.

    Raises:
        ValueError: no benchmark has that name.
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]


def run(benchmark: str, **kwargs: Any) -> Dict[str, Any]:
    """Run the benchmark ``benchmark`` (both loops); see :func:`specglue.eval.runner.run`."""
    return runner.run(get_benchmark(benchmark), **kwargs)


def rescore(out_dir: Union[str, Path], method_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Score the caches of a finished run again (no matching) and rewrite its reports."""
    name = runner.read_results(out_dir)["benchmark"]
    return runner.rescore(out_dir, get_benchmark(name), method_names)


__all__ = ["BENCHMARKS", "METHODS", "METHOD_NAMES", "get_benchmark", "rescore", "run"]
