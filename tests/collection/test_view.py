"""Pictures of a COLMAP model, on a synthetic model with known geometry.

Ten cameras (640x480, f = 500 px) on an arc, each looking at the centre of a cloud of 500
points: the points below the plane y = 0 red, the others green. The reference trajectory is
the true one shifted by 0.3 along x.
"""

import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

pycolmap = pytest.importorskip("pycolmap")

from specglue.collection import view  # noqa: E402

W, H, F = 640, 480, 500.0
NUM_IMAGES, NUM_POINTS = 10, 500
NAMES = [f"frame{i:02d}.jpg" for i in range(NUM_IMAGES)]
RED, GREEN = (230, 40, 40), (40, 200, 60)  # RGB
REFERENCE_SHIFT = np.array([0.3, 0.0, 0.0])
CHROMIUM = view.find_browser()


def look_at(centre, target):
    """world -> camera rotation [3, 3] of a camera at ``centre`` looking at ``target``, y down."""
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross([0.0, -1.0, 0.0], z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def build_model(coloured: bool = True, registered: bool = True):
    """A pycolmap Reconstruction: NUM_IMAGES cameras on an arc around NUM_POINTS points."""
    rng = np.random.default_rng(0)
    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(
        pycolmap.Camera.create_from_model_name(1, "PINHOLE", F, W, H))
    for i, angle in enumerate(np.deg2rad(np.linspace(-60, 60, NUM_IMAGES))):
        centre = np.array([6 * np.sin(angle), 0.5 * np.cos(3 * angle), -6 * np.cos(angle)])
        R = look_at(centre, np.zeros(3))
        image = pycolmap.Image(name=NAMES[i], camera_id=1, image_id=i + 1)
        if registered:
            rec.add_image_with_trivial_frame(
                image, pycolmap.Rigid3d(pycolmap.Rotation3d(R), -R @ centre))
        else:
            rec.add_image_with_trivial_frame(image)
    for xyz in rng.uniform(-1.5, 1.5, (NUM_POINTS, 3)):
        colour = (RED if xyz[1] < 0 else GREEN) if coloured else (0, 0, 0)
        rec.add_point3D(xyz, pycolmap.Track(), np.array(colour, np.uint8))
    return rec


@pytest.fixture(scope="module")
def model():
    return build_model()


@pytest.fixture(scope="module")
def reference(model):
    return {model.image(i).name: model.image(i).projection_center() + REFERENCE_SHIFT
            for i in model.reg_image_ids()}


def page_data(page: Path) -> dict:
    """The JSON object embedded in a page."""
    match = re.search(r'<script type="application/json" id="model-data">(.*?)</script>',
                      page.read_text(encoding="utf-8"), re.S)
    assert match, "no embedded model data"
    return json.loads(match.group(1))


def colour_pixels(image: np.ndarray, rgb, tolerance: float = 30.0) -> int:
    """How many pixels of an RGB image [H, W, 3] are within ``tolerance`` of ``rgb``."""
    distance = np.linalg.norm(image.astype(np.float64) - np.array(rgb, np.float64), axis=-1)
    return int((distance < tolerance).sum())


def hex_rgb(colour: str):
    return tuple(int(colour[k:k + 2], 16) for k in (1, 3, 5))


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_page_is_self_contained_and_embeds_the_model(model, reference, tmp_path):
    title = "synthetic </script> & <b>arc</b>"
    page = view.write_model_page(model, tmp_path / "out" / "model.html", reference=reference,
                                 title=title)
    assert page == tmp_path / "out" / "model.html"
    assert [p.name for p in page.parent.iterdir()] == ["model.html"]  # no temporary file left
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)\s*=", text, re.I)
    assert "<title>synthetic &lt;/script&gt; &amp; &lt;b&gt;arc&lt;/b&gt;</title>" in text

    data = page_data(page)
    assert data["title"] == title
    assert data["stats"] == {"registered_images": NUM_IMAGES, "images": NUM_IMAGES,
                             "points3D": NUM_POINTS, "points_shown": NUM_POINTS,
                             "mean_reprojection_error": pytest.approx(0.0)}
    cameras = data["cameras"]
    assert [c["name"] for c in cameras] == NAMES
    for camera in cameras:
        image = model.find_image_with_name(camera["name"])
        centre = np.array(camera["centre"])
        np.testing.assert_allclose(centre, image.projection_center(), atol=1e-3)
        frustum = np.array(camera["frustum"])  # [4, 3] image corners
        assert frustum.shape == (4, 3)
        # in front of the camera, at one depth, and as wide as the image: 640 / 500 px
        depth = (frustum - centre) @ image.viewing_direction()
        assert depth.min() > 0 and np.ptp(depth) < 5e-3  # coordinates rounded to 1e-3
        width = np.linalg.norm(frustum[1] - frustum[0])
        assert width / depth[0] == pytest.approx(W / F, rel=1e-2)
    points = np.array(data["points"]).reshape(-1, 3)
    assert len(points) == NUM_POINTS
    original = np.array([p.xyz for p in model.points3D.values()])
    np.testing.assert_allclose(np.sort(points, 0), np.sort(original, 0), atol=1e-3)
    colours = np.array(data["colours"]).reshape(-1, 3)
    assert {tuple(c) for c in colours} == {RED, GREEN}
    assert data["reference"]["names"] == NAMES
    np.testing.assert_allclose(np.array(data["reference"]["centres"]),
                               [reference[n] for n in NAMES], atol=1e-3)


def test_page_caps_the_points_and_greys_a_model_without_colours(tmp_path):
    page = view.write_model_page(build_model(coloured=False), tmp_path / "m.html", max_points=100)
    data = page_data(page)
    assert data["stats"]["points3D"] == NUM_POINTS and data["stats"]["points_shown"] == 100
    assert len(data["points"]) == 3 * 100
    assert data["colours"] is None and data["reference"] is None
    assert data["title"] == "COLMAP model"


def test_plot_model_draws_four_views(model, reference, tmp_path):
    png = view.plot_model(model, tmp_path / "plots" / "model.png", reference=reference,
                          title="synthetic")
    assert [p.name for p in png.parent.iterdir()] == ["model.png"]
    image = read_rgb(png)
    assert image.shape == (1100, 1200, 3)
    blue, orange = (31, 119, 180), (255, 127, 14)  # tab:blue (path), tab:orange (reference)
    h, w = image.shape[0] // 2, image.shape[1] // 2
    scene_views, close_up = (image[:h, :w], image[:h, w:], image[h:, :w]), image[h:, w:]
    for quadrant in scene_views + (close_up,):
        assert quadrant.std() > 10
        assert colour_pixels(quadrant, blue) > 50
        assert colour_pixels(quadrant, orange) > 20
    for quadrant in scene_views:  # the points, in their colours (blended with the white background at the edges)
        assert colour_pixels(quadrant, RED, 60) + colour_pixels(quadrant, GREEN, 60) > 50
    assert colour_pixels(close_up, GREEN, 60) == 0  # the path alone (red would match the viewing ticks)


@pytest.mark.parametrize("write", [view.write_model_page, view.plot_model])
def test_a_model_without_registered_image_is_refused(write, tmp_path):
    with pytest.raises(ValueError, match="no registered image"):
        write(build_model(registered=False), tmp_path / "out.file")
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_reference_is_refused(model, tmp_path):
    with pytest.raises(ValueError, match="reference centre of 'frame00.jpg'"):
        view.write_model_page(model, tmp_path / "m.html", reference={"frame00.jpg": [1.0, 2.0]})
    with pytest.raises(ValueError, match="reference centre of 'x'"):
        view.plot_model(model, tmp_path / "m.png", reference={"x": [0.0, np.nan, 1.0]})
    assert list(tmp_path.iterdir()) == []


def test_view_model_finds_the_model(model, tmp_path):
    project = tmp_path / "project"
    (project / "sparse" / "0").mkdir(parents=True)
    model.write(str(project / "sparse" / "0"))
    page = view.view_model(project)
    assert page == project / "model.html"
    assert len(page_data(page)["cameras"]) == NUM_IMAGES
    other = view.view_model(project / "sparse" / "0", out_path=tmp_path / "pages" / "p.html")
    assert other == tmp_path / "pages" / "p.html" and other.is_file()

    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "nothing"))):
        view.view_model(tmp_path / "nothing")


def test_view_model_draws_the_aligned_ground_truth(model, tmp_path):
    """Ground truth in another world (scaled, turned, moved) lands on the estimated cameras."""
    project, truth = tmp_path / "project", tmp_path / "truth"
    (project / "sparse").mkdir(parents=True)
    truth.mkdir()
    model.write(str(project / "sparse"))
    moved = pycolmap.Reconstruction(str(project / "sparse"))
    moved.transform(pycolmap.Sim3d(3.0, pycolmap.Rotation3d(np.array([0.0, 0.0, 0.6, 0.8])), [1.0, 2.0, 3.0]))
    moved.write(str(truth))
    data = page_data(view.view_model(project, ground_truth=truth))
    centres = {c["name"]: np.array(c["centre"]) for c in data["cameras"]}
    reference = dict(zip(data["reference"]["names"], np.reshape(data["reference"]["centres"], (-1, 3))))
    assert sorted(reference) == sorted(centres)
    for name, centre in centres.items():
        np.testing.assert_allclose(reference[name], centre, atol=1e-3)


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="chromium is not installed (apt-get install chromium); required under CI")
def test_page_renders_in_a_headless_browser(model, reference, tmp_path):
    page = view.write_model_page(model, tmp_path / "model.html", reference=reference)
    image = read_rgb(view.screenshot_page(page, tmp_path / "shot.png", size=(900, 700)))
    assert image.shape == (700, 900, 3)
    # the canvas drew the frusta and path, the reference path and the points in their colours
    assert colour_pixels(image, hex_rgb(view.PAGE_ESTIMATED)) > 1000
    assert colour_pixels(image, hex_rgb(view.PAGE_REFERENCE)) > 300
    assert colour_pixels(image, RED, 10) > 200
    assert colour_pixels(image, GREEN, 10) > 200
