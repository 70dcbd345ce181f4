"""Markdown table, JSON and PNG outputs."""

import json
import math

import numpy as np

from specglue.eval import metrics, report
from specglue.eval.benchmarks import homography, pose


def test_markdown_table():
    summaries = {"a": {"auc@5deg": 0.5, "auc@10deg": 0.25, "auc@20deg": math.nan, "num_matches": 12.4,
                       "inlier_ratio": 1.0, "time_ms": 3.21, "mean_stop": 4.0}}
    table = report.markdown_table(summaries, pose.COLUMNS)
    lines = table.strip().splitlines()
    assert lines[0].startswith("| method | AUC@5° | AUC@10° | #matches")  # all-nan AUC@20° dropped
    assert lines[2] == "| a | 50.0 | 25.0 | 12 | 100.0 | 3.2 | 4.0 |"
    summaries["b"] = {"auc@20deg": 0.75}
    lines = report.markdown_table(summaries, pose.COLUMNS).strip().splitlines()
    assert lines[2] == "| a | 50.0 | 25.0 | – | 12 | 100.0 | 3.2 | 4.0 |"
    assert lines[3] == "| b | – | – | 75.0 | – | – | – | – |"


def test_homography_table_groups_aucs():
    s = {"auc_ransac@1px": 0.1, "auc_ransac@3px": 0.2, "auc_ransac@5px": 0.3}
    row = report.markdown_table({"m": s}, homography.COLUMNS).strip().splitlines()[2]
    assert "10.0 / 20.0 / 30.0" in row


def test_cells_with_one_format_per_key():
    columns = (("0–30°", ("auc", "matches"), ("pct", "int")),)
    row = report.markdown_table({"m": {"auc": 0.5, "matches": 12.4}}, columns).strip().splitlines()[2]
    assert row == "| m | 50.0 / 12 |"


def test_json_handles_numpy_and_non_finite(tmp_path):
    path = report.write_json({"x": np.float32(1.5), "inf": math.inf, "nan": math.nan,
                              "arr": np.arange(3), "n": np.int64(2)}, tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data == {"x": 1.5, "inf": "inf", "nan": None, "arr": [0, 1, 2], "n": 2}


def test_plots_are_written(tmp_path):
    curve = [0.5] * len(metrics.CURVE_THRESHOLDS)
    summaries = {"m": {"precision_curve": curve, "recall_curve": curve, "stop_hist": [0, 1, 2]}}
    errors = {"m": {"ransac": [0.5, 2.0, math.inf], "dlt": [1.0, math.inf, 4.0]}}
    p1 = report.plot_homography(summaries, errors, metrics.CURVE_THRESHOLDS, tmp_path / "h.png", "t")
    p2 = report.plot_pose({"m": [1.0, 30.0, math.inf]}, tmp_path / "p.png")
    p3 = report.plot_stop_histogram(summaries, tmp_path / "s.png")
    p4 = report.plot_by_bin({"m": {"auc": [0.9, 0.1], "matches": [100, 3]}}, ["0-30", "30-60"], "deg",
                            tmp_path / "b.png")
    for p in (p1, p2, p3, p4):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.plot_stop_histogram({"m": {"stop_hist": None}}, tmp_path / "x.png") is None
