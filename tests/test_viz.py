"""Tests for specglue.viz: figure sizes, mask overlays, line colours and captions."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection, PathCollection

from specglue.viz import (
    CAPTION_PX,
    COLORBAR_PX,
    EMPHASIS_COLOR,
    GAP_PX,
    INLIER_COLOR,
    OUTLIER_COLOR,
    figure_size_px,
    plot_keypoints,
    plot_matches,
)

H0, W0, H1, W1 = 60, 80, 50, 70


def _gray(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), 128, np.uint8)


def _match_lines(fig) -> LineCollection:
    found = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "matches"]
    assert len(found) == 1
    return found[0]


def _all_text(fig) -> str:
    return "\n".join(t.get_text() for t in fig.texts)


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    kpts0 = rng.uniform([0, 0], [W0 - 1, H0 - 1], (12, 2))
    kpts1 = rng.uniform([0, 0], [W1 - 1, H1 - 1], (9, 2))
    matches = np.array([[0, 3], [2, 1], [5, 5], [7, 0], [11, 8]])
    return kpts0, kpts1, matches


class TestPlotMatches:
    def test_png_size_and_mask_overlays(self, tmp_path):
        mask0 = np.zeros((H0, W0), bool)
        mask0[10:30, 10:40] = True
        mask1 = torch.zeros(H1, W1)
        mask1[20:40, 30:60] = 1.0
        path = tmp_path / "sub" / "matches.png"
        fig = plot_matches(
            _gray(H0, W0), _gray(H1, W1), np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2), int),
            mask0=mask0, mask1=mask1, path=path, show_keypoints=False,
        )
        png = cv2.imread(str(path))[..., ::-1].astype(int)  # RGB
        assert png.shape[:2] == (H0 + CAPTION_PX, W0 + GAP_PX + W1)
        assert figure_size_px(fig) == (png.shape[1], png.shape[0])
        def px(x, y):  # canvas pixel -> PNG pixel (input pixels are drawn 1:1 below the caption)
            return png[CAPTION_PX + y, x]
        r, g, b = px(20, 20)  # inside mask0: cyan tint
        assert g > r + 30 and b > r + 30 and abs(g - b) < 10
        r, g, b = px(60, 50)  # outside both masks: still gray
        assert abs(r - g) < 5 and abs(g - b) < 5
        r, g, b = px(W0 + GAP_PX + 45, 30)  # inside mask1: magenta tint
        assert r > g + 30 and b > g + 30
        r, g, b = px(W0 + 3, 5)  # the gap is white
        assert min(r, g, b) > 245
        assert "0 matches" in _all_text(fig)
        assert len(_match_lines(fig).get_segments()) == 0

    def test_inliers_green_outliers_red(self, pair):
        kpts0, kpts1, matches = pair
        inliers = np.array([True, False, True, True, False])
        fig = plot_matches(_gray(H0, W0), _gray(H1, W1), kpts0, kpts1, matches, inliers=inliers)
        lines = _match_lines(fig)
        colors = lines.get_colors()
        assert colors.shape == (5, 4)
        np.testing.assert_allclose(colors[inliers, :3], np.tile(INLIER_COLOR[:3], (3, 1)))
        np.testing.assert_allclose(colors[~inliers, :3], np.tile(OUTLIER_COLOR[:3], (2, 1)))
        assert np.all(colors[inliers, 1] > colors[inliers, 0]) and np.all(colors[~inliers, 0] > colors[~inliers, 1])
        # segments join kpts0[i] to kpts1[j] shifted by the width of image 0 plus the gap
        segments = np.stack(lines.get_segments())
        np.testing.assert_allclose(segments[:, 0], kpts0[matches[:, 0]])
        np.testing.assert_allclose(segments[:, 1], kpts1[matches[:, 1]] + [W0 + GAP_PX, 0])
        text = _all_text(fig)
        assert "5 matches" in text and "3 inliers" in text

    def test_emphasized_matches_stand_out_of_faded_ones(self, pair):
        kpts0, kpts1, matches = pair
        inliers = np.array([True, False, True, True, False])
        on_glare = np.array([False, True, True, False, False])
        fig = plot_matches(_gray(H0, W0), _gray(H1, W1), kpts0, kpts1, matches, inliers=inliers,
                           emphasis=on_glare, emphasis_label="on glare")
        lines = _match_lines(fig)
        colors, widths = lines.get_colors(), np.asarray(lines.get_linewidths())
        np.testing.assert_allclose(colors[on_glare], np.tile(EMPHASIS_COLOR, (2, 1)))
        np.testing.assert_allclose(colors[~on_glare & inliers, :3], np.tile(INLIER_COLOR[:3], (2, 1)))
        assert np.all(colors[~on_glare, 3] < 0.5) and np.all(widths[on_glare] > 2 * widths[~on_glare].max())
        assert "2 on glare" in _all_text(fig)
        with pytest.raises(ValueError, match="emphasis"):
            plot_matches(_gray(H0, W0), _gray(H1, W1), kpts0, kpts1, matches, emphasis=on_glare[:3])

    def test_scores_use_colormap_and_colorbar(self, pair, tmp_path):
        kpts0, kpts1, matches = pair
        scores = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
        path = tmp_path / "scores.png"
        fig = plot_matches(
            torch.rand(3, H0, W0), _gray(H1, W1)[..., 0], kpts0, kpts1, matches, scores=scores,
            caption="pair 1-2", path=path, stop_layer=4, cmap="viridis",
        )
        colors = _match_lines(fig).get_colors()
        np.testing.assert_allclose(colors[:, :3], matplotlib.colormaps["viridis"](scores.numpy())[:, :3], atol=1e-6)
        assert len(fig.axes) == 2  # image + colorbar
        assert cv2.imread(str(path)).shape[:2] == (H0 + CAPTION_PX + COLORBAR_PX, W0 + GAP_PX + W1)
        text = _all_text(fig)
        assert text.startswith("pair 1-2") and "stopped at layer 4" in text and "5 matches" in text

    def test_matches0_vector_and_downscaling(self, pair):
        kpts0, kpts1, _ = pair
        matches0 = -np.ones(12, int)
        matches0[[1, 4]] = [2, 6]
        fig = plot_matches(_gray(H0, W0), _gray(H1, W1), kpts0, kpts1, matches0, max_width=75)
        assert len(_match_lines(fig).get_segments()) == 2
        assert figure_size_px(fig)[0] == 75

    def test_no_pyplot_state_leak(self, pair):
        import matplotlib.pyplot as plt

        before = plt.get_fignums()
        plot_matches(_gray(H0, W0), _gray(H1, W1), *pair)
        plot_keypoints(_gray(H0, W0), pair[0])
        assert plt.get_fignums() == before

    def test_bad_input_names_the_argument(self, pair):
        kpts0, kpts1, matches = pair
        img0, img1 = _gray(H0, W0), _gray(H1, W1)
        with pytest.raises(ValueError, match="kpts0"):
            plot_matches(img0, img1, np.zeros((12, 3)), kpts1, matches)
        with pytest.raises(ValueError, match="mask1"):
            plot_matches(img0, img1, kpts0, kpts1, matches, mask1=np.zeros((H0, W0)))
        with pytest.raises(ValueError, match="inliers"):
            plot_matches(img0, img1, kpts0, kpts1, matches, inliers=np.ones(4, bool))
        with pytest.raises(ValueError, match="out of range"):
            plot_matches(img0, img1, kpts0, kpts1, np.array([[0, 9]]))
        with pytest.raises(ValueError, match="image0"):
            plot_matches(np.zeros((4, 5, 2)), img1, kpts0, kpts1, matches)


class TestPlotKeypoints:
    def test_png_positions_and_scores(self, tmp_path):
        kpts = np.array([[5.0, 5.0], [40.0, 30.0], [70.0, 50.0]])
        scores = np.array([0.1, 0.5, 0.9])
        mask = np.zeros((H0, W0), bool)
        mask[:10, 60:] = True
        path = tmp_path / "kpts.png"
        fig = plot_keypoints(torch.rand(1, H0, W0), kpts, scores=scores, mask=mask, path=path)
        assert cv2.imread(str(path)).shape[:2] == (H0 + CAPTION_PX + COLORBAR_PX, W0)
        (points,) = [c for c in fig.axes[0].collections if isinstance(c, PathCollection) and c.get_gid() == "keypoints"]
        np.testing.assert_allclose(points.get_offsets(), kpts)
        facecolors = points.get_facecolors()
        np.testing.assert_allclose(facecolors, matplotlib.colormaps["viridis"]([0.0, 0.5, 1.0]), atol=1e-6)
        assert "3 keypoints" in _all_text(fig) and "200 specular pixels" in _all_text(fig)

    def test_zero_keypoints_and_fixed_color(self, tmp_path):
        path = tmp_path / "none.png"
        fig = plot_keypoints(_gray(H0, W0), np.zeros((0, 2)), path=path)
        assert cv2.imread(str(path)).shape[:2] == (H0 + CAPTION_PX, W0)
        assert "0 keypoints" in _all_text(fig)
        fig = plot_keypoints(_gray(H0, W0), np.ones((4, 2)), colors="red")
        (points,) = [c for c in fig.axes[0].collections if c.get_gid() == "keypoints"]
        np.testing.assert_allclose(points.get_facecolors()[:, :3], np.tile([1.0, 0.0, 0.0], (4, 1)))

    def test_bad_colors(self):
        with pytest.raises(ValueError, match="colors"):
            plot_keypoints(_gray(H0, W0), np.ones((4, 2)), colors=np.ones((3, 3)))


def test_importing_the_module_changes_no_backend_or_rc_params():
    """Checked in a fresh interpreter: in this one matplotlib is already imported and configured."""
    script = ("import matplotlib; before = (matplotlib.rcParams['backend'], dict(matplotlib.rcParams)); "
              "import specglue.viz; after = (matplotlib.rcParams['backend'], dict(matplotlib.rcParams)); "
              "print(before == after)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "MPLBACKEND": "svg"})
    assert out.stdout.strip() == "True", out.stderr
