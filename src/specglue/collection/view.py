"""Pictures of a COLMAP model: an interactive 3D page and a four-view PNG.

- :func:`write_model_page`: one self-contained HTML file (inline CSS and JavaScript, no
  library, nothing fetched from the network) that draws the model on a 2D canvas: the 3D
  points in their colours (a random subset when there are more than ``max_points``), every
  registered camera as a frustum (a pyramid from the projection centre to the image corners,
  its shape from the camera's intrinsics, its depth a few percent of the scene), the cameras
  joined in name order (the trajectory, "start" at the first) and, when given, a reference
  trajectory (e.g. ground truth aligned to the model) with a thin segment from each estimated
  centre to its reference. The model is embedded as JSON in a
  ``<script type="application/json" id="model-data">`` element. Drag to orbit (around the
  scene's smallest principal axis), wheel to zoom, right- or shift-drag to pan; "reset view"
  returns to the first view. The page draws itself on load, so a headless browser's
  screenshot shows the model.
- :func:`plot_model`: a PNG with a perspective view and three orthogonal views along the
  principal axes of the scene (top, front, side), at equal scales.
- :func:`screenshot_page`: how headless Chromium renders a page, as PNG.
- :func:`view_model`: a model folder (or its ``sparse/`` or ``sparse/0``) to a page, with a
  ground-truth trajectory beside it when given.

Both pictures share one frame: the principal axes of the camera centres and the points (the
first the largest; the third, the smallest, is "up": for a ground-level collection the
vertical, for cameras facing a surface the direction back towards the cameras), centred on
the box spanned by the 1st to 99th percentiles of the points and every camera, so a few far
points do not shrink the scene. Files are written through a temporary file and a rename.

pycolmap is optional (``pip install 'specglue[colmap]'``); only :func:`view_model` imports it
(the other functions take a ``pycolmap.Reconstruction`` made elsewhere).
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..atomic import atomic_write, atomic_write_text
from ..errors import SpecglueError
from ..geometry.poses import find_colmap_model, read_sequence_poses, reconstruction_poses
from ..geometry.trajectory import evaluate_trajectory, reference_in_estimate
from ..optional import require
from .colmap import registered_images

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: most 3D points embedded in a page / drawn in a PNG (a seeded random subset above)
MAX_PAGE_POINTS = 200_000
MAX_PLOT_POINTS = 50_000
#: depth of a camera frustum: this fraction of the scene's extent, at most this fraction of
#: the camera path's (so that the frusta of a short path do not merge into a blob)
FRUSTUM_FRACTION = 0.04
FRUSTUM_PATH_FRACTION = 0.2
#: length of a camera's viewing-direction tick in the PNG, as a fraction of the extent
TICK_FRACTION = 0.06
#: percentiles of the points that bound the view (with every camera)
VIEW_PERCENTILES = (1.0, 99.0)
#: page colours: estimated cameras and path, reference path, estimate-to-reference links
PAGE_ESTIMATED = "#00e5ff"
PAGE_REFERENCE = "#ffb000"
PAGE_LINK = "#9aa0a6"
#: PNG colours (on white)
PLOT_ESTIMATED = "tab:blue"
PLOT_REFERENCE = "tab:orange"
PLOT_VIEW_TICK = "tab:red"
#: seed of the point subset
SEED = 0


# ----------------------------------------------------------------------------------------
# The scene both pictures draw
# ----------------------------------------------------------------------------------------


@dataclass
class _Scene:
    """What is drawn, in model coordinates, and the frame to look at it in."""

    names: List[str]  # registered images, in name order
    centres: np.ndarray  # [C, 3] projection centres
    views: np.ndarray  # [C, 3] unit viewing directions
    frusta: np.ndarray  # [C, 4, 3] image corners (top-left, top-right, bottom-right, bottom-left)
    points: np.ndarray  # [S, 3] the drawn subset of the points
    colours: Optional[np.ndarray]  # [S, 3] uint8; None when the model has no colour
    num_points: int  # points in the model
    reference_names: List[str]  # in name order
    reference: np.ndarray  # [R, 3]
    origin: np.ndarray  # [3] centre of the view box
    basis: np.ndarray  # [3, 3] rows: principal axes, right-handed, the last the smallest
    half: np.ndarray  # [3] half sides of the view box, along the axes
    extent: float  # largest side of the view box

    def to_basis(self, xyz: np.ndarray) -> np.ndarray:
        """Model coordinates [N, 3] to basis coordinates [N, 3] (relative to ``origin``)."""
        return (xyz - self.origin) @ self.basis.T


def _rotation(image) -> np.ndarray:
    """The world-to-camera rotation [3, 3] of an image."""
    return np.asarray(image.cam_from_world().rotation.matrix(), dtype=np.float64)


def _check_reference(reference: Optional[Mapping[str, Sequence[float]]]) -> Dict[str, np.ndarray]:
    """``reference`` as name -> finite [3] centre.

    Raises:
        ValueError: a centre is not three finite numbers.
    """
    checked = {}
    for name, centre in (reference or {}).items():
        value = np.asarray(centre, dtype=np.float64)
        if value.shape != (3,) or not np.isfinite(value).all():
            raise ValueError(f"reference centre of {name!r} must be 3 finite numbers, "
                             f"got {centre!r}")
        checked[str(name)] = value
    return checked


def _principal_axes(xyz: np.ndarray, views: np.ndarray, ups: np.ndarray) -> np.ndarray:
    """Right-handed principal axes [3, 3] (rows, largest first) with meaningful signs.

    The third axis points where the cameras' up directions point and against their viewing
    directions (above a ground-level path, behind cameras facing a surface); the second where
    the cameras look and where their up points (ahead of a ground-level path, up for cameras
    facing a surface); the first completes a right-handed frame.

    Args:
        xyz: [N, 3] camera centres and points.
        views: [C, 3] viewing directions; ups: [C, 3] up directions (image -y) of the cameras.
    """
    if len(xyz) >= 3:
        _, _, vt = np.linalg.svd(xyz - xyz.mean(0), full_matrices=False)
        axes = vt.copy()  # [3, 3]
    else:
        axes = np.eye(3)
    view, up = views.mean(0), ups.mean(0)
    if np.dot(axes[2], up - view) < 0:
        axes[2] = -axes[2]
    if np.dot(axes[1], up + view) < 0:
        axes[1] = -axes[1]
    axes[0] = np.cross(axes[1], axes[2])
    return axes


def _scene(reconstruction, reference: Optional[Mapping[str, Sequence[float]]],
           max_points: int) -> _Scene:
    """Cameras, points, reference and view frame of a model.

    Raises:
        ValueError: the model has no registered image; a reference centre is malformed.
    """
    images = registered_images(reconstruction)
    if not images:
        raise ValueError("the reconstruction has no registered image to show")
    ref = _check_reference(reference)
    rotations = np.stack([_rotation(image) for image in images])  # [C, 3, 3]
    centres = np.array([image.projection_center() for image in images], dtype=np.float64)  # [C, 3]
    views = rotations[:, 2]  # [C, 3] camera +z in the world
    ups = -rotations[:, 1]  # [C, 3] camera -y in the world

    records = list(reconstruction.points3D.values())
    num_points = len(records)
    if num_points > max_points:
        keep = np.sort(np.random.default_rng(SEED).choice(num_points, max_points, replace=False))
        records = [records[i] for i in keep]
    points = np.array([p.xyz for p in records], dtype=np.float64).reshape(-1, 3)  # [S, 3]
    colours = np.array([p.color for p in records], dtype=np.uint8).reshape(-1, 3)  # [S, 3]
    reference_names = sorted(ref)
    reference_xyz = np.array([ref[n] for n in reference_names]).reshape(-1, 3)  # [R, 3]

    # the frame: principal axes of the cameras and of the points inside their percentile box
    # (far outliers would tilt it), then the box in that frame
    if len(points):
        lo, hi = np.percentile(points, VIEW_PERCENTILES, axis=0)
        inner = points[((points >= lo) & (points <= hi)).all(1)]
    else:
        inner = points
    basis = _principal_axes(np.concatenate([centres, inner]), views, ups)
    projected_cams = np.concatenate([centres, reference_xyz]) @ basis.T  # [C + R, 3]
    low, high = projected_cams.min(0), projected_cams.max(0)
    if len(points):
        projected = points @ basis.T  # [S, 3]
        low = np.minimum(low, np.percentile(projected, VIEW_PERCENTILES[0], axis=0))
        high = np.maximum(high, np.percentile(projected, VIEW_PERCENTILES[1], axis=0))
    origin = ((low + high) / 2) @ basis
    extent = float(max((high - low).max(), 1e-9))

    # frusta: the image corners on the plane z = depth in front of each camera
    depth = FRUSTUM_FRACTION * extent
    path_extent = float(np.ptp(centres, axis=0).max())
    if path_extent > 0:
        depth = min(depth, FRUSTUM_PATH_FRACTION * path_extent)
    frusta = []
    for image, rotation, centre in zip(images, rotations, centres):
        camera = image.camera
        K = np.asarray(camera.calibration_matrix(), dtype=np.float64)  # [3, 3]
        w, h = camera.width, camera.height
        pixels = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64)
        rays = pixels @ np.linalg.inv(K).T  # [4, 3] in the camera, z = 1
        frusta.append(depth * rays @ rotation + centre)  # camera to world: R^T x + C
    if ref and not set(ref) & {image.name for image in images}:
        logger.warning("no image of the reference is registered in the model: the reference "
                       "path is drawn without links to the estimated one")
    return _Scene(
        names=[image.name for image in images], centres=centres, views=views,
        frusta=np.array(frusta), points=points, colours=colours if colours.any() else None,
        num_points=num_points, reference_names=reference_names, reference=reference_xyz,
        origin=origin, basis=basis, half=(high - low) / 2, extent=extent)


def _default_title(reconstruction, scene: _Scene) -> str:
    error = (f", mean reprojection error {reconstruction.compute_mean_reprojection_error():.2f} px"
             if scene.num_points else "")
    return f"{len(scene.names)} registered images, {scene.num_points} points{error}"


# ----------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
html, body { margin: 0; height: 100%; overflow: hidden; background: #101418;
  font: 13px/1.4 system-ui, sans-serif; color: #e8eaed; }
canvas { display: block; width: 100%; height: 100%; cursor: grab; }
#panel { position: absolute; top: 10px; left: 10px; padding: 8px 10px; max-width: 46em;
  background: rgba(16, 20, 24, 0.75); border-radius: 6px; pointer-events: none; }
#panel h1 { font-size: 15px; margin: 0 0 4px; }
#panel .swatch { display: inline-block; width: 18px; height: 3px; vertical-align: middle;
  margin-right: 6px; }
#panel .hint { color: #9aa0a6; }
#reset { position: absolute; top: 10px; right: 10px; }
</style>
</head>
<body>
<canvas id="view"></canvas>
<div id="panel"><h1>__TITLE__</h1><div id="counts"></div><div id="legend"></div>
<div class="hint">drag: orbit &middot; wheel: zoom &middot; right- or shift-drag: pan</div></div>
<button id="reset">reset view</button>
<script type="application/json" id="model-data">__DATA__</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("model-data").textContent);
const canvas = document.getElementById("view");
const ctx = canvas.getContext("2d");
const FOV = 45 * Math.PI / 180;  // vertical field of view
const dpr = () => window.devicePixelRatio || 1;
const [E1, E2, E3] = data.view.basis;  // principal axes; orbit around E3
const pts = Float32Array.from(data.points);
const n = pts.length / 3;
const rgba = new Uint32Array(n);  // little-endian ABGR, for ImageData
for (let i = 0; i < n; i++) {
  const [r, g, b] = data.colours ? [0, 1, 2].map(k => data.colours[3 * i + k]) : [170, 170, 170];
  rgba[i] = (255 << 24 | b << 16 | g << 8 | r) >>> 0;
}
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const add = (a, b, s) => [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                         a[0] * b[1] - a[1] * b[0]];
const unit = (a) => { const l = Math.hypot(a[0], a[1], a[2]) || 1; return a.map(v => v / l); };
let view = {};  // target, dist, az, el
let moved = false;  // by the user since the last reset

// the eye's frame: back (target to eye), right, up
function frame(v) {
  const h = [0, 1, 2].map(i => Math.cos(v.az) * E1[i] + Math.sin(v.az) * E2[i]);
  const back = [0, 1, 2].map(i => Math.cos(v.el) * h[i] + Math.sin(v.el) * E3[i]);
  const right = unit(cross(E3, back));
  return { back, right, up: cross(back, right) };
}

// the distance at which the view box and every frustum are inside the field of view
function fit(v) {
  const f = frame(v), w = canvas.width, h = canvas.height;
  const ty = Math.tan(FOV / 2), tx = ty * w / h;
  let dist = 0;
  for (const c of data.view.corners.concat(...data.cameras.map(cam => cam.frustum))) {
    const d = add(c, v.target, -1);
    const z = dot(d, f.back);
    dist = Math.max(dist, z + Math.abs(dot(d, f.right)) / tx, z + Math.abs(dot(d, f.up)) / ty);
  }
  return 1.08 * dist;
}

function reset() {
  view = { target: data.view.target.slice(), az: -Math.PI / 2, el: 55 * Math.PI / 180 };
  view.dist = fit(view);
  moved = false;
  draw();
}

function draw() {
  const w = canvas.width, h = canvas.height, f = frame(view);
  const eye = add(view.target, f.back, view.dist);
  const focal = h / 2 / Math.tan(FOV / 2), near = 1e-3 * view.dist;
  const toCam = (p) => {  // eye coordinates: x right, y up, z depth
    const d = add(p, eye, -1);
    return [dot(d, f.right), dot(d, f.up), -dot(d, f.back)];
  };
  const toPix = (c) => [w / 2 + focal * c[0] / c[2], h / 2 - focal * c[1] / c[2]];

  // points: a z-buffered splat of size x size pixels each
  const image = ctx.createImageData(w, h);
  const pix = new Uint32Array(image.data.buffer), depth = new Float32Array(w * h).fill(Infinity);
  pix.fill(0xff181410);  // the background, #101418
  const size = Math.max(1, Math.round(dpr() * (n > 1e5 ? 1 : n > 1e4 ? 2 : 3)));
  for (let i = 0; i < n; i++) {
    const c = toCam([pts[3 * i], pts[3 * i + 1], pts[3 * i + 2]]);
    if (c[2] < near) continue;
    const x0 = Math.round(w / 2 + focal * c[0] / c[2] - size / 2);
    const y0 = Math.round(h / 2 - focal * c[1] / c[2] - size / 2);
    for (let y = Math.max(0, y0); y < Math.min(h, y0 + size); y++) {
      for (let x = Math.max(0, x0); x < Math.min(w, x0 + size); x++) {
        const k = y * w + x;
        if (c[2] < depth[k]) { depth[k] = c[2]; pix[k] = rgba[i]; }
      }
    }
  }
  ctx.putImageData(image, 0, 0);

  // lines, cut at the near plane
  const cut = (P, Q) => {  // the point of PQ on the near plane
    const t = (near - P[2]) / (Q[2] - P[2]);
    return P.map((v, i) => v + t * (Q[i] - v));
  };
  const segment = (a, b) => {
    let A = toCam(a), B = toCam(b);
    if (A[2] < near && B[2] < near) return;
    if (A[2] < near) A = cut(A, B); else if (B[2] < near) B = cut(B, A);
    const pa = toPix(A), pb = toPix(B);
    ctx.moveTo(pa[0], pa[1]); ctx.lineTo(pb[0], pb[1]);
  };
  const stroke = (colour, width, addSegments) => {
    ctx.beginPath(); addSegments(); ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.stroke();
  };
  const path = (centres) => centres.forEach((c, i) => i && segment(centres[i - 1], c));
  const cams = data.cameras, ref = data.reference, style = data.style;
  if (ref) {
    const byName = new Map(ref.names.map((name, i) => [name, ref.centres[i]]));
    stroke(style.link, dpr(), () => cams.forEach(
      c => byName.has(c.name) && segment(c.centre, byName.get(c.name))));
    stroke(style.reference, 2 * dpr(), () => path(ref.centres));
  }
  stroke(style.estimated, 1.5 * dpr(), () => cams.forEach(c => c.frustum.forEach((corner, j) => {
    segment(c.centre, corner); segment(corner, c.frustum[(j + 1) % 4]);
  })));
  stroke(style.estimated, 2.5 * dpr(), () => path(cams.map(c => c.centre)));
  const start = toCam(cams[0].centre);
  if (start[2] >= near) {
    const p = toPix(start);
    ctx.fillStyle = style.estimated;
    ctx.font = `${Math.round(13 * dpr())}px sans-serif`;
    ctx.beginPath(); ctx.arc(p[0], p[1], 4 * dpr(), 0, 2 * Math.PI); ctx.fill();
    ctx.fillText("start", p[0] + 6 * dpr(), p[1] - 6 * dpr());
  }
}

let pending = false;
const redraw = () => {  // at most one draw per animation frame
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; draw(); });
};
function resize() {
  canvas.width = Math.max(1, Math.round(canvas.clientWidth * dpr()));
  canvas.height = Math.max(1, Math.round(canvas.clientHeight * dpr()));
}
let drag = null;
canvas.addEventListener("contextmenu", e => e.preventDefault());
canvas.addEventListener("pointerdown", e => {
  drag = { x: e.clientX, y: e.clientY, pan: e.button === 2 || e.shiftKey };
  canvas.setPointerCapture(e.pointerId);
});
canvas.addEventListener("pointerup", () => { drag = null; });
canvas.addEventListener("pointermove", e => {
  if (!drag) return;
  const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
  drag.x = e.clientX; drag.y = e.clientY;
  if (drag.pan) {
    const f = frame(view), k = 2 * view.dist * Math.tan(FOV / 2) / canvas.clientHeight;
    view.target = add(add(view.target, f.right, -dx * k), f.up, dy * k);
  } else {
    view.az -= 0.008 * dx;
    view.el = Math.max(-1.55, Math.min(1.55, view.el + 0.008 * dy));
  }
  moved = true;
  redraw();
});
canvas.addEventListener("wheel", e => {
  e.preventDefault(); view.dist *= Math.exp(0.0015 * e.deltaY); moved = true; redraw();
}, { passive: false });
// a resize keeps the user's view, or fits the first one to the new size (a headless
// browser lays the page out smaller than its window first)
window.addEventListener("resize", () => { resize(); if (moved) redraw(); else reset(); });
document.getElementById("reset").addEventListener("click", reset);

const s = data.stats;
document.getElementById("counts").textContent =
  `${s.registered_images} of ${s.images} images registered, ${s.points3D} points` +
  (s.points_shown < s.points3D ? ` (${s.points_shown} shown)` : "") +
  (s.mean_reprojection_error === null ? "" :
   `, mean reprojection error ${s.mean_reprojection_error.toFixed(2)} px`);
const legend = [[data.style.estimated, "estimated cameras and path"]];
if (data.reference) {
  legend.push([data.style.reference, "reference path"], [data.style.link, "estimate to reference"]);
}
for (const [colour, label] of legend) {
  const row = document.createElement("div"), swatch = document.createElement("span");
  swatch.className = "swatch"; swatch.style.background = colour;
  row.append(swatch, label);
  document.getElementById("legend").append(row);
}
resize();
reset();
</script>
</body>
</html>
"""


def _rounded(values: np.ndarray, decimals: int) -> List[Any]:
    """``values`` rounded to ``decimals`` decimal places, as (nested) lists of floats."""
    return np.round(np.asarray(values, dtype=np.float64), decimals).tolist()


def _page_data(reconstruction, scene: _Scene, title: str) -> Dict[str, Any]:
    """The JSON object embedded in the page."""
    # 5 significant digits of the scene's extent
    decimals = max(0, 4 - math.floor(math.log10(scene.extent)))
    corners = np.array(np.meshgrid(*zip(-scene.half, scene.half), indexing="ij")).reshape(3, -1).T
    error = float(reconstruction.compute_mean_reprojection_error()) if scene.num_points else None
    error = error if error is not None and math.isfinite(error) else None  # JSON has no NaN
    reference = None
    if scene.reference_names:
        reference = {"names": scene.reference_names,
                     "centres": _rounded(scene.reference, decimals)}
    return {
        "title": title,
        "stats": {
            "registered_images": len(scene.names),
            "images": int(reconstruction.num_images()),
            "points3D": scene.num_points,
            "points_shown": len(scene.points),
            "mean_reprojection_error": error,
        },
        "cameras": [{"name": name, "centre": _rounded(centre, decimals),
                     "frustum": _rounded(frustum, decimals)}
                    for name, centre, frustum in zip(scene.names, scene.centres, scene.frusta)],
        "points": _rounded(scene.points.reshape(-1), decimals),  # [3 S] x, y, z, x, ...
        "colours": None if scene.colours is None else scene.colours.reshape(-1).tolist(),
        "reference": reference,
        "view": {
            "target": _rounded(scene.origin, decimals),
            "basis": _rounded(scene.basis, 6),
            "corners": _rounded(corners @ scene.basis + scene.origin, decimals),  # [8, 3]
        },
        "style": {"estimated": PAGE_ESTIMATED, "reference": PAGE_REFERENCE, "link": PAGE_LINK},
    }


def write_model_page(reconstruction, path: PathLike,
                     reference: Optional[Mapping[str, Sequence[float]]] = None,
                     title: Optional[str] = None, max_points: int = MAX_PAGE_POINTS) -> Path:
    """A self-contained interactive HTML page of a model (see the module's docstring).

    Args:
        reconstruction: a ``pycolmap.Reconstruction``.
        path: the page to write.
        reference: image name -> reference camera centre [3], in the model's coordinates
            (e.g. a ground-truth trajectory aligned to the model); drawn as a second path.
        title: the page's title; default "COLMAP model".
        max_points: most points embedded (a seeded random subset above).

    Returns:
        ``path``.

    Raises:
        ValueError: the model has no registered image; a reference centre is not 3 numbers.
    """
    scene = _scene(reconstruction, reference, max_points)
    title = "COLMAP model" if title is None else title
    # "</" inside the JSON would end its <script> element; "<\/" is the same JSON string
    data = json.dumps(_page_data(reconstruction, scene, title),
                      separators=(",", ":")).replace("</", "<\\/")
    fields = {"TITLE": html.escape(title), "DATA": data}
    page = re.sub("__(TITLE|DATA)__", lambda match: fields[match.group(1)], _PAGE)
    path = atomic_write_text(path, page)
    logger.info("wrote a page of %d cameras and %d of %d points to %s", len(scene.names),
                len(scene.points), scene.num_points, path)
    return path


# ----------------------------------------------------------------------------------------
# The PNG
# ----------------------------------------------------------------------------------------

#: the orthogonal panels: name, basis axes drawn horizontally and vertically
_ORTHOGONAL_VIEWS = (("top: axes 1 and 2", 0, 1), ("front: axes 1 and 3", 0, 2))


def plot_model(reconstruction, path: PathLike,
               reference: Optional[Mapping[str, Sequence[float]]] = None,
               title: Optional[str] = None, max_points: int = MAX_PLOT_POINTS) -> Path:
    """A PNG of a model: a perspective view and two orthogonal views of the scene, at equal
    scales, and a perspective close-up of the camera path.

    The views are along the scene's principal axes (see the module's docstring): top (along
    the smallest) and front. Points are drawn in their colours (grey when the model has
    none); cameras in name order, joined by a line, each with a marker and a short line along
    its viewing direction, the first marked "start"; the reference path, when given, in
    another colour with a thin segment from each estimated centre to its reference. The
    close-up leaves the points out and spans the cameras and the reference only: an
    endoscope's path is a few percent of the scene it sees.

    Args:
        reconstruction: a ``pycolmap.Reconstruction``.
        path: the PNG to write.
        reference: image name -> reference camera centre [3], in the model's coordinates.
        title: the figure's title; default: the counts and the mean reprojection error.
        max_points: most points drawn (a seeded random subset above).

    Returns:
        ``path``.

    Raises:
        ValueError: the model has no registered image; a reference centre is not 3 numbers.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scene = _scene(reconstruction, reference, max_points)
    cams = scene.to_basis(scene.centres)  # [C, 3]
    ticks = cams + TICK_FRACTION * scene.extent * (scene.views @ scene.basis.T)  # [C, 3]
    pts = scene.to_basis(scene.points)  # [S, 3]
    colours = "0.6" if scene.colours is None else scene.colours / 255.0
    ref = scene.to_basis(scene.reference)  # [R, 3]
    ref_of = dict(zip(scene.reference_names, ref))
    links = [(cam, ref_of[name]) for name, cam in zip(scene.names, cams) if name in ref_of]
    half = scene.extent / 2 * 1.05  # a cube around the view box: equal scales everywhere

    fig = Figure(figsize=(12.0, 11.0), dpi=100)
    FigureCanvasAgg(fig)

    def draw(ax, axes: Sequence[int], points: bool = True, tick_scale: float = 1.0) -> None:
        """Everything, in the basis coordinates ``axes`` (2 or 3 of them)."""
        def cut(xyz: np.ndarray) -> List[np.ndarray]:
            return [xyz[:, a] for a in axes]

        if len(pts) and points:
            ax.scatter(*cut(pts), s=1.5, c=colours, linewidths=0, label="3D points")
        for a, b in links:
            ax.plot(*cut(np.stack([a, b])), "-", color="0.5", lw=0.6)
        if len(ref):
            ax.plot(*cut(ref), "-", color=PLOT_REFERENCE, lw=1.5, label="reference path")
        for a, b in zip(cams, ticks):
            ax.plot(*cut(np.stack([a, a + tick_scale * (b - a)])), "-", color=PLOT_VIEW_TICK, lw=1.0)
        ax.plot(*cut(cams), "-o", color=PLOT_ESTIMATED, lw=1.5, ms=3.5, label="cameras and path")
        ax.plot([], [], "-", color=PLOT_VIEW_TICK, lw=1.0, label="viewing direction")

    def perspective(panel: int, centre: np.ndarray, reach: float, name: str, **drawn: Any) -> Any:
        """A 3D panel of the cube ``centre`` +- ``reach``."""
        ax = fig.add_subplot(2, 2, panel, projection="3d")
        draw(ax, (0, 1, 2), **drawn)
        ax.text(*cams[0], "start", fontsize=8)
        for set_lim, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
            set_lim(c - reach, c + reach)
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=35, azim=-60)
        ax.set_xlabel("axis 1")
        ax.set_ylabel("axis 2")
        ax.set_zlabel("axis 3")
        ax.set_title(name, fontsize=10)
        return ax

    ax3d = perspective(1, np.zeros(3), half, "perspective")
    for panel, (name, h, v) in enumerate(_ORTHOGONAL_VIEWS, start=2):
        ax = fig.add_subplot(2, 2, panel)
        draw(ax, (h, v))
        ax.annotate("start", cams[0, [h, v]], textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlim(-half, half)
        ax.set_ylim(-half, half)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(f"axis {h + 1}")
        ax.set_ylabel(f"axis {v + 1}")
        ax.set_title(name, fontsize=10)
    path_xyz = np.concatenate([cams, ref])  # [C + R, 3]
    reach = max(float((path_xyz.max(0) - path_xyz.min(0)).max()) / 2 * 1.15, 1e-9)
    perspective(4, (path_xyz.min(0) + path_xyz.max(0)) / 2, reach, "camera path, close up", points=False,
                tick_scale=min(1.0, 0.3 * reach / (TICK_FRACTION * scene.extent)))
    handles, labels = ax3d.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, markerscale=3)
    fig.suptitle(_default_title(reconstruction, scene) if title is None else title, fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))

    path = atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", facecolor="white"))
    logger.debug("saved model plot to %s", path)
    return path


# ----------------------------------------------------------------------------------------
# A model folder to a page
# ----------------------------------------------------------------------------------------


#: browsers that can take a headless screenshot of a page, in order of preference
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> Optional[str]:
    """The path of a Chromium-family browser on PATH, or None."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot_page(page: PathLike, png: PathLike, size: Sequence[int] = (900, 700), timeout: float = 120.0) -> Path:
    """A PNG of how a headless Chromium renders ``page`` at ``size`` (width, height), after its
    scripts ran; no network is used (the browser's background connections are off).

    Raises:
        SpecglueError: no browser (install Debian's ``chromium``), or it wrote no picture.
    """
    browser = find_browser()
    if browser is None:
        raise SpecglueError(f"a screenshot needs one of {', '.join(BROWSERS)} on PATH (Debian: apt-get install chromium)")
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="specglue-browser-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                   "--virtual-time-budget=3000", f"--screenshot={png}", Path(page).resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if not png.is_file():
        raise SpecglueError(f"{browser} wrote no screenshot of {page} (exit {done.returncode}): {done.stderr[-2000:]}")
    return png


def view_model(model_dir: PathLike, out_path: Optional[PathLike] = None,
               ground_truth: Optional[PathLike] = None) -> Path:
    """Read a COLMAP model and write its page (:func:`write_model_page`).

    Args:
        model_dir: the model's folder, or a folder with it in ``0/``, ``sparse/`` or ``sparse/0/``.
        out_path: the page; default ``model_dir/model.html``.
        ground_truth: known poses of the images (a COLMAP model or the endoscopy layout, see
            :func:`~specglue.geometry.poses.read_sequence_poses`), drawn beside the estimate
            after a similarity alignment (:func:`~specglue.geometry.trajectory.evaluate_trajectory`).

    Returns:
        The page's path.

    Raises:
        ValueError: no model in those folders; the model has no registered image; the ground
            truth cannot be read or aligned.
        MissingDependency: pycolmap is not installed.
    """
    pycolmap = require("pycolmap", "colmap", "viewing a COLMAP model")
    model_dir = Path(model_dir)
    folder = find_colmap_model(model_dir)
    reconstruction = pycolmap.Reconstruction(str(folder))
    reference = None
    if ground_truth is not None:
        truth = read_sequence_poses(ground_truth)
        estimate = reconstruction_poses(reconstruction, str(folder))
        names = [n for n in truth.names if n in estimate.T_cam_from_world]
        trajectory = evaluate_trajectory(estimate, truth, names)
        reference = reference_in_estimate(truth, trajectory["similarity"])
    out_path = model_dir / "model.html" if out_path is None else Path(out_path)
    return write_model_page(reconstruction, out_path, reference=reference, title=str(folder))


__all__ = [
    "BROWSERS",
    "MAX_PAGE_POINTS",
    "MAX_PLOT_POINTS",
    "find_browser",
    "plot_model",
    "screenshot_page",
    "view_model",
    "write_model_page",
]
