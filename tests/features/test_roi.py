"""Field-of-view estimation (specglue.features.roi): synthetic endoscope frames with a known view,
the sinus sequence against its field-of-view mask, and ordinary photos (no view)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import cv2
import numpy as np
import pytest
import torch

from specglue.eval.data import find_data_dir
from specglue.features.roi import estimate_roi, resolve_roi, roi_from_file
from specglue.images import load_image

H, W = 360, 480


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def draw_view(kind: str) -> np.ndarray:
    """The view [H, W] bool of a synthetic endoscope."""
    view = np.zeros((H, W), np.uint8)
    if kind == "circle":  # cut by the top and bottom edges
        cv2.circle(view, (W // 2 + 7, H // 2), 200, 1, -1)
    elif kind == "octagon":  # corners cut off, as EAD2019 frames
        c = 70
        pts = np.array([[c, 0], [W - 1 - c, 0], [W - 1, c], [W - 1, H - 1 - c], [W - 1 - c, H - 1],
                        [c, H - 1], [0, H - 1 - c], [0, c]], np.int32)
        cv2.fillPoly(view, [pts], 1)
    elif kind == "letterbox":  # black bars above, below and at the sides
        view[45:H - 45, 20:W - 20] = 1
    else:
        raise KeyError(kind)
    return view.astype(bool)


def texture(seed: int) -> np.ndarray:
    """Smooth tissue-like colour texture [H, W, 3] float in about 90..230."""
    rng = np.random.default_rng(seed)
    low = cv2.resize(rng.uniform(0, 1, (12, 16, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.normal(0, 1, (H, W, 3)).astype(np.float32), (0, 0), 1.5)
    base = np.array([200, 120, 110], np.float32)  # reddish mucosa
    return np.clip(base * (0.6 + 0.5 * low) + 12 * fine, 0, 255)


def lumen_factor(center: Tuple[float, float], sigma: float) -> np.ndarray:
    """Multiplier [H, W] that darkens a soft blob to 6 % of the content at its centre."""
    y, x = np.mgrid[:H, :W].astype(np.float32)
    d2 = (x - center[0]) ** 2 + (y - center[1]) ** 2
    return 1 - 0.94 * np.exp(-d2 / (2 * sigma ** 2))


def frame(kind: str, lumen: Tuple[float, float], seed: int = 0, sigma: float = 28.0) -> np.ndarray:
    """A synthetic endoscope frame: RGB uint8 [H, W, 3], textured view with a dark lumen, a noisy
    near-black surround, JPEG-compressed (ringing at the rim, blocks in the surround)."""
    rng = np.random.default_rng(seed + 100)
    view = draw_view(kind)
    image = texture(seed) * lumen_factor(lumen, sigma)[..., None]
    image[~view] = rng.uniform(0, 7, (int((~view).sum()), 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])


#: a lumen centre touching the rim of each view (inside it)
RIM_LUMEN = {"circle": (W // 2 + 7 - 180, H // 2 + 20), "octagon": (W - 30, H // 2 - 30),
             "letterbox": (W // 2, H - 45 - 20)}


class TestSynthetic:
    @pytest.mark.parametrize("kind", ["circle", "octagon", "letterbox"])
    def test_single_frame_lumen_at_rim(self, kind):
        image = frame(kind, RIM_LUMEN[kind])
        roi = estimate_roi(image)
        assert roi is not None and roi.shape == (H, W) and roi.dtype == bool
        assert iou(roi, draw_view(kind)) >= 0.97
        # the dark lumen is inside the view
        x, y = RIM_LUMEN[kind]
        assert roi[int(y), int(x)]

    @pytest.mark.parametrize("kind", ["circle", "octagon", "letterbox"])
    def test_lumen_inside(self, kind):
        roi = estimate_roi(frame(kind, (W / 2 - 20, H / 2 + 10), seed=3, sigma=45))
        assert roi is not None and iou(roi, draw_view(kind)) >= 0.97
        assert roi[H // 2 + 10, W // 2 - 20]

    def test_dark_object_at_rim_stays_in(self):
        # a dark (not black) object with a sharp outline touching the rim: a shadow, not surround
        image = frame("circle", (W / 2, H / 2), sigma=5).astype(np.float32)
        truth = draw_view("circle")
        shadow = np.zeros((H, W), bool)
        shadow[H // 2 - 40:H // 2 + 60, :110] = True
        image[shadow & truth] = 14
        roi = estimate_roi(image.astype(np.uint8))
        assert roi is not None and iou(roi, truth) >= 0.97
        assert roi[H // 2, 60]

    def test_concave_black_edge_is_followed(self):
        # an undistorted view: the image edge maps to a concave curve, black above it
        truth = draw_view("circle")
        x = np.arange(W)
        curve = (40 + 25 * np.cos((x - W / 2) / W * np.pi) ** 2).astype(int)  # deepest in the middle
        for col in range(W):
            truth[:curve[col], col] = False
        image = frame("circle", (W / 2, H / 2), sigma=5)
        image[~truth] = 3
        roi = estimate_roi(image)
        assert roi is not None and iou(roi, truth) >= 0.98
        assert not roi[55, W // 2]

    def test_several_frames_moving_lumen(self):
        # the lumen wanders along the rim: every frame has a dark notch somewhere
        cx, cy, r = W // 2 + 7, H // 2, 185
        angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        centres = [(cx + r * np.cos(a), cy + r * np.sin(a) * 0.8) for a in angles]
        frames = [frame("circle", c, seed=i, sigma=50) for i, c in enumerate(centres)]
        roi = estimate_roi(frames)
        assert roi is not None and iou(roi, draw_view("circle")) >= 0.98
        assert all(roi[int(y), int(x)] for x, y in centres)

    def test_input_forms_agree(self):
        image = frame("octagon", RIM_LUMEN["octagon"])
        reference = estimate_roi(image)
        tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255
        assert np.array_equal(estimate_roi(tensor), reference)
        assert np.array_equal(estimate_roi(tensor[None]), reference)  # [B, C, H, W]: B frames
        assert np.array_equal(estimate_roi([image, image]), reference)
        grey = image.max(axis=2)
        assert iou(estimate_roi(grey), reference) >= 0.99
        assert np.array_equal(estimate_roi(grey[..., None]), estimate_roi(grey))
        assert iou(estimate_roi(torch.from_numpy(grey)[None].float() / 255), reference) >= 0.99

    def test_large_frame(self):
        # a large frame is estimated on a shrunk copy and returned at full size
        size = (4 * W, 4 * H)
        image = cv2.resize(frame("circle", RIM_LUMEN["circle"]), size, interpolation=cv2.INTER_LINEAR)
        truth = cv2.resize(draw_view("circle").astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        roi = estimate_roi(image)
        assert roi is not None and roi.shape == (4 * H, 4 * W) and iou(roi, truth) >= 0.97


class TestNoView:
    def test_full_frame_texture(self):
        assert estimate_roi(texture(1).astype(np.uint8)) is None

    def test_vignetting(self):
        y, x = np.mgrid[:H, :W].astype(np.float32)
        r2 = ((x - W / 2) ** 2 + (y - H / 2) ** 2) / (W / 2) ** 2
        image = texture(2) * np.clip(1 - 0.75 * r2, 0, 1)[..., None] ** 2  # corners go black, softly
        assert estimate_roi(image.astype(np.uint8)) is None

    def test_night_sky_over_a_skyline(self):
        image = texture(4)
        skyline = (H * (0.45 + 0.12 * np.sin(np.arange(W) / 9.0) * (np.arange(W) % 40 < 25))).astype(int)
        for col, top in enumerate(skyline):
            image[:top, col] = 3
        assert estimate_roi(image.astype(np.uint8)) is None

    def test_thin_black_frame(self):
        # rectified photos (ScanNet) have a black frame of a few pixels: no endoscope
        image = texture(5).astype(np.uint8)
        image[:4], image[-4:], image[:, :5], image[:, -5:] = 0, 0, 0, 0
        assert estimate_roi(image) is None


class TestErrors:
    def test_empty(self):
        with pytest.raises(ValueError, match="at least one image"):
            estimate_roi([])

    def test_sizes_differ(self):
        with pytest.raises(ValueError, match="same size"):
            estimate_roi([np.zeros((H, W, 3), np.uint8), np.zeros((H, W + 2, 3), np.uint8)])

    @pytest.mark.parametrize("bad, message", [
        (np.zeros((H, W, 3), np.float32), "uint8"),
        (np.zeros((H, W, 4), np.uint8), "shape"),
        (torch.zeros(3, H, W, dtype=torch.uint8), "float"),
        (torch.zeros(2, H, W), "C = 1 or 3"),
        (torch.full((3, H, W), 255.0), r"\[0, 1\]"),
        ("frame.png", "sequence of images"),
    ])
    def test_bad_input(self, bad, message):
        with pytest.raises(ValueError, match=message):
            estimate_roi(bad)


class TestFiles:
    def test_roi_from_file(self, tmp_path):
        view = draw_view("circle")
        path = tmp_path / "fov.png"
        cv2.imwrite(str(path), view.astype(np.uint8) * 255)
        mask = roi_from_file(path, (H, W))
        assert mask.dtype == bool and np.array_equal(mask, view)

    def test_wrong_size_names_file_and_sizes(self, tmp_path):
        path = tmp_path / "fov_small.png"
        cv2.imwrite(str(path), np.full((100, 120), 255, np.uint8))
        with pytest.raises(ValueError) as info:
            roi_from_file(path, (H, W))
        text = str(info.value)
        assert "fov_small.png" in text and f"{H}x{W}" in text and "100x120" in text

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            roi_from_file(tmp_path / "nope.png", (H, W))

    def test_resolve_roi(self, tmp_path):
        image = frame("circle", RIM_LUMEN["circle"])
        paths = []
        for i in range(2):
            paths.append(tmp_path / f"f{i}.png")
            cv2.imwrite(str(paths[-1]), image[:, :, ::-1])
        assert resolve_roi(None, paths, (H, W)) is None
        assert resolve_roi("none", paths, (H, W)) is None
        assert np.array_equal(resolve_roi("auto", paths, (H, W)), estimate_roi(image))
        view = draw_view("letterbox")
        assert np.array_equal(resolve_roi(view.astype(np.uint8), paths, (H, W)), view)
        with pytest.raises(ValueError, match="roi"):
            resolve_roi(np.ones((10, 10), bool), paths, (H, W))
        with pytest.raises(ValueError, match="'auto', 'none' or a mask"):
            resolve_roi("atuo", paths, (H, W))


# --------------------------------------------------------------------------------------------
# real data (../shared/data or $SPECGLUE_DATA)

DATA = find_data_dir()
SINUS = "13_sinus_endoscopy_sfm_poses"
PHOTO_FOLDERS = ("01_lightglue_assets", "02_hloc_sacre_coeur", "03_superglue_scannet_pairs_gt",
                 "04_superglue_phototourism_pairs", "05_tum_freiburg3_sequence",
                 "06_oxford_graffiti_homography")


@pytest.fixture(scope="module")
def data() -> Path:
    if DATA is None:
        pytest.skip("shared data folder not found (set SPECGLUE_DATA)")
    return DATA


@pytest.fixture(scope="module")
def sinus(data) -> Tuple[List[np.ndarray], np.ndarray]:
    folder = data / SINUS
    if not (folder / "undistorted_mask.bmp").is_file():
        pytest.skip(f"{folder} not found")
    frames = [load_image(p) for p in sorted(folder.glob("*.jpg"))]
    truth = roi_from_file(folder / "undistorted_mask.bmp", frames[0].shape[:2])
    return frames, truth


def _shrink(images: List[np.ndarray], truth: np.ndarray, width: int):
    if width == truth.shape[1]:
        return images, truth
    size = (width, round(width * truth.shape[0] / truth.shape[1]))
    return ([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images],
            cv2.resize(truth.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0)


class TestRealData:
    @pytest.mark.parametrize("width", [1920, 960, 480])
    def test_sinus_single_frames(self, sinus, width):
        frames, truth = _shrink(sinus[0][::8], sinus[1], width)
        for image in frames:
            roi = estimate_roi(image)
            assert roi is not None and iou(roi, truth) >= 0.95

    @pytest.mark.parametrize("width", [1920, 960, 480])
    def test_sinus_several_frames(self, sinus, width):
        frames, truth = _shrink(sinus[0][::3], sinus[1], width)
        roi = estimate_roi(frames)
        assert roi is not None and iou(roi, truth) >= 0.95

    def test_photos_have_no_view(self, data):
        paths = [p for folder in PHOTO_FOLDERS for p in sorted((data / folder).rglob("*"))
                 if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".ppm")]
        if not paths:
            pytest.skip("no photos of 01-06 in the shared data folder")
        found = [p.name for p in paths if estimate_roi(load_image(p)) is not None]
        assert found == []

    def test_endoscopy_frames(self, data):
        ead = sorted((data / "09_ead2019_endoscopy_artefacts_specularity" / "frames_bbox").glob("*.jpg"))
        lap = sorted((data / "10_laparoscopic_cholecystectomy_sequence_rvim" / "frames").glob("*.png"))
        if not ead or not lap:
            pytest.skip("EAD2019 / laparoscopic frames not found")
        # octagonal view: only the four black corners are outside
        for path in ead:
            roi = estimate_roi(load_image(path))
            assert roi is not None and 0.94 < roi.mean() < 0.99
            assert not roi[0, 0] and not roi[-1, -1] and roi[roi.shape[0] // 2, roi.shape[1] // 2]
        # a laparoscopic frame cropped inside its circle fills the image: no view to cut out
        assert estimate_roi([load_image(p) for p in lap]) is None
