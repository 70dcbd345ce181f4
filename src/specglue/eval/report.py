"""Reports of the benchmarks: a Markdown table (returned, never printed), JSON and PNG plots.

Plots use matplotlib's object API with the Agg canvas (``Figure`` + ``FigureCanvasAgg``), so
no pyplot global state is touched and no display is needed.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..atomic import atomic_write, atomic_write_text

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: a table column: ``(header, summary key or tuple of keys, format or tuple of formats)``;
#: formats are ``pct`` (x100, one decimal), ``int``, ``ms``, ``float1``
Column = Tuple[str, Union[str, Tuple[str, ...]], Union[str, Tuple[str, ...]]]
#: columns every benchmark's table has (see :func:`specglue.eval.metrics.summarize_common`)
MATCHES_COLUMN: Column = ("#matches", "num_matches", "int")
TIMING_COLUMNS: Tuple[Column, ...] = (("ms/pair", "time_ms", "ms"), ("mean stop", "mean_stop", "float1"))


#: line styles cycled per method, so overlapping curves stay visible
_LINESTYLES = ("-", "--", ":", "-.")


def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "pct":
        return f"{100 * value:.1f}"
    if kind == "int":
        return f"{value:.0f}"
    if kind in ("ms", "float1"):
        return f"{value:.1f}"
    return str(value)


def markdown_table(summaries: Mapping[str, Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """A GitHub Markdown table, one row per method (insertion order), percentages for rates.

    ``columns`` entries are :data:`Column`; a tuple of keys is written ``a / b / c`` in one
    cell, each with its own format when the format is a tuple too. Missing or nan values show as ``–``; a column missing
    for every method is left out (e.g. ``% on glare`` without highlights).
    """

    def missing(summary: Mapping[str, Any], key: Any) -> bool:
        keys = key if isinstance(key, tuple) else (key,)
        values = [summary.get(k) for k in keys]
        return all(v is None or (isinstance(v, float) and math.isnan(v)) for v in values)

    columns = [c for c in columns if not all(missing(s, c[1]) for s in summaries.values())]
    headers = ["method"] + [c[0] for c in columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|"]
    for method, summary in summaries.items():
        cells = [method]
        for _, key, kind in columns:
            if isinstance(key, tuple):
                kinds = kind if isinstance(kind, tuple) else (kind,) * len(key)
                cells.append(" / ".join(_fmt(summary.get(k), f) for k, f in zip(key, kinds)))
            else:
                cells.append(_fmt(summary.get(key), kind))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    """Convert numpy / Path / non-finite floats into JSON (inf -> "inf", nan -> null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, Path):
        return str(value)
    return value


def write_text(text: str, path: PathLike) -> Path:
    """Write ``text`` through a temporary file and a rename (a crash leaves the old file)."""
    return atomic_write_text(path, text)


def write_json(data: Mapping[str, Any], path: PathLike) -> Path:
    """Write ``data`` as indented JSON (numpy converted; nan -> null, inf -> "inf")."""
    return write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n", path)


def _new_figure(ncols: int, width: float = 5.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def _cumulative(errors: Sequence[float], max_x: float) -> Tuple[np.ndarray, np.ndarray]:
    """Cumulative error curve ``(x, share of pairs with error <= x)`` up to ``max_x``."""
    e = np.sort(np.asarray([x if x is not None else math.inf for x in errors], dtype=np.float64))
    e = np.where(np.isnan(e), np.inf, e)
    x = np.linspace(0, max_x, 200)
    y = np.searchsorted(e, x, side="right") / max(len(e), 1)
    return x, y


def plot_homography(summaries: Mapping[str, Mapping[str, Any]],
                    errors: Mapping[str, Mapping[str, Sequence[float]]],
                    curve_thresholds: Sequence[float], path: PathLike, title: str = "") -> Path:
    """Precision and recall vs threshold, and cumulative corner-error curves (RANSAC, DLT).

    Args:
        summaries: per method, with ``precision_curve`` / ``recall_curve`` over
            ``curve_thresholds``.
        errors: per method ``{"ransac": [P], "dlt": [P]}`` corner errors in px.
    """
    fig, axes = _new_figure(4)
    for k, (method, s) in enumerate(summaries.items()):
        style = {"ls": _LINESTYLES[k % len(_LINESTYLES)], "label": method}
        axes[0].plot(curve_thresholds, s["precision_curve"], marker=".", **style)
        axes[1].plot(curve_thresholds, s["recall_curve"], marker=".", **style)
        for ax, est in ((axes[2], "ransac"), (axes[3], "dlt")):
            x, y = _cumulative(errors[method][est], 10.0)
            ax.plot(x, y, **style)
    for ax, name, xlabel in ((axes[0], "match precision", "threshold [px]"),
                             (axes[1], "match recall", "threshold [px]"),
                             (axes[2], "homography (MAGSAC++)", "corner error [px]"),
                             (axes[3], "homography (DLT, all matches)", "corner error [px]")):
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3)
    axes[2].set_ylabel("share of pairs")
    for ax in axes[2:]:
        for t in (1, 3, 5):
            ax.axvline(t, color="grey", lw=0.5, ls=":")
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_pose(errors: Mapping[str, Sequence[float]], path: PathLike, title: str = "") -> Path:
    """Cumulative pose-error curves per method (the AUC integrands), up to 20 degrees."""
    fig, axes = _new_figure(1, width=6.0)
    ax = axes[0]
    for k, (method, errs) in enumerate(errors.items()):
        x, y = _cumulative(errs, 20.0)
        ax.plot(x, y, ls=_LINESTYLES[k % len(_LINESTYLES)], label=method)
    for t in (5, 10, 20):
        ax.axvline(t, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("max(rotation, translation) error [deg]")
    ax.set_ylabel("share of pairs")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title or "relative pose")
    return _save(fig, path)


def plot_by_bin(curves: Mapping[str, Mapping[str, Sequence[float]]], labels: Sequence[str], xlabel: str,
                path: PathLike, title: str = "") -> Path:
    """One panel per quantity (e.g. AUC, matches), one line per method, over labelled bins.

    Args:
        curves: per method ``{quantity: [value per bin]}`` (rates in [0, 1] are drawn as %).
    """
    quantities = list(next(iter(curves.values())))
    fig, axes = _new_figure(len(quantities))
    x = np.arange(len(labels))
    for k, (method, values) in enumerate(curves.items()):
        for ax, q in zip(axes, quantities):
            ax.plot(x, values[q], marker="o", ls=_LINESTYLES[k % len(_LINESTYLES)], label=method)
    for ax, q in zip(axes, quantities):
        ax.set_title(q)
        ax.set_xticks(x, labels)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_stop_histogram(summaries: Mapping[str, Mapping[str, Any]], path: PathLike) -> Optional[Path]:
    """Bar chart of the layer at which each LightGlue variant stopped; None if none has one."""
    hists = {m: s["stop_hist"] for m, s in summaries.items() if s.get("stop_hist")}
    if not hists:
        return None
    fig, axes = _new_figure(1, width=6.0)
    ax = axes[0]
    width = 0.8 / len(hists)
    for k, (method, hist) in enumerate(hists.items()):
        layers = np.arange(1, len(hist) + 1)
        ax.bar(layers + (k - (len(hists) - 1) / 2) * width, hist, width=width, label=method)
    ax.set_xlabel("layers run (stop)")
    ax.set_ylabel("pairs")
    ax.legend(fontsize="small")
    ax.set_title("early-stopping depth")
    return _save(fig, path)


def _save(fig: Any, path: PathLike) -> Path:
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    logger.info("wrote %s", path)
    return path


__all__ = [
    "Column",
    "MATCHES_COLUMN",
    "TIMING_COLUMNS",
    "markdown_table",
    "plot_by_bin",
    "plot_homography",
    "plot_pose",
    "plot_stop_histogram",
    "write_json",
    "write_text",
]
