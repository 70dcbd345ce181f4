"""The benchmarks, by name (``specglue eval <name>``, :func:`specglue.eval.run`).

A new benchmark is one module that defines a :class:`specglue.eval.runner.Benchmark` (pair
builder, scorer, summary, table columns, plots) and one line here.
"""

from typing import Dict

from ..runner import Benchmark
from . import homography, hpatches, pose, rotation, sequence_pose

BENCHMARKS: Dict[str, Benchmark] = {
    "homography": homography.BENCHMARK,
    "hpatches": hpatches.BENCHMARK,
    "pose": pose.BENCHMARK,
    "rotation": rotation.BENCHMARK,
    "sequence-pose": sequence_pose.BENCHMARK,
}

__all__ = ["BENCHMARKS"]
