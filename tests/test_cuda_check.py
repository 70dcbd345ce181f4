"""benchmarks/cuda_check.py, the prepared GPU check, runs on the CPU too (so that it cannot rot)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_on_the_cpu(tmp_path):
    out = tmp_path / "cuda_check"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cuda_check.py"), "--device", "cpu", "--quick",
                           "--skip-tests", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.with_suffix(".json").read_text())
    rows = {row["method"]: row for row in result["latency"]}
    assert {"official", "specglue fp32", "specglue mp", "specglue fp32, no fused SDPA",
            "specglue fp32, batch of 4 (per pair)"} <= set(rows)
    assert rows["specglue fp32"]["agreement"] == 1.0 and rows["specglue fp32, no fused SDPA"]["agreement"] == 1.0
    assert rows["specglue mp"]["agreement"] > 0.9
    assert all(row["ms"] > 0 for row in result["latency"])
    assert result["pruning"][0]["ms from 1024"] > 0 and "| official |" in out.with_suffix(".md").read_text()
