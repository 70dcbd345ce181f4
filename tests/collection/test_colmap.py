"""COLMAP database and mapping from hloc-layout files, on a synthetic scene with known geometry.

Six cameras (640x480, f = 500 px) on an arc around a cloud of 400 points; keypoints are the
projections plus 0.3 px noise, in a shuffled order per image, with unmatched distractors;
the matches are the true correspondences, a few dropped and some replaced by outliers.
"""

import numpy as np
import pytest

pycolmap = pytest.importorskip("pycolmap")

from specglue.collection import colmap  # noqa: E402
from specglue.errors import SpecglueError  # noqa: E402
from specglue.storage import (  # noqa: E402
    ImageFeatures, open_h5, write_image_features, write_pair_matches, write_settings)

W, H, F = 640, 480, 500.0
NAMES = [f"frame{i}.jpg" for i in range(5)] + ["sub/frame5.jpg"]  # sorted = path order
MISSING_PAIR = (NAMES[0], NAMES[5])  # not in the matches file
NOISE_PX = 0.3
OUTLIER_RATE = 0.1


def look_at(centre, target):
    """world -> camera rotation [3, 3] and translation [3] of a camera at ``centre`` looking at
    ``target``, x right, y down."""
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross([0.0, -1.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return R, -R @ centre


def make_scene(rng):
    points = rng.uniform(-1.5, 1.5, (400, 3))  # [P, 3]
    centres, keypoints, point_of = [], [], []
    for angle in np.deg2rad(np.linspace(-30, 30, len(NAMES))):
        centre = np.array([6 * np.sin(angle), 0.3 * np.cos(3 * angle), -6 * np.cos(angle)])
        R, t = look_at(centre, np.zeros(3))
        cam = points @ R.T + t
        # hloc's pixels: the centre of the top-left pixel is (0, 0), the image centre (W-1)/2
        uv = cam[:, :2] / cam[:, 2:] * F + np.array([(W - 1) / 2, (H - 1) / 2])
        uv += rng.normal(0, NOISE_PX, uv.shape)
        seen = np.flatnonzero((uv[:, 0] > 0) & (uv[:, 0] < W - 1) & (uv[:, 1] > 0)
                              & (uv[:, 1] < H - 1) & (rng.random(len(points)) < 0.9))
        distractors = rng.uniform([0, 0], [W - 1, H - 1], (30, 2))
        kpts = np.concatenate([uv[seen], distractors])
        ids = np.concatenate([seen, np.full(len(distractors), -1)])  # 3D point of each keypoint
        order = rng.permutation(len(kpts))
        centres.append(centre)
        keypoints.append(kpts[order].astype(np.float32))
        point_of.append(ids[order])
    return np.array(centres), keypoints, point_of


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """Features and matches files; the true and the outlier matches of every pair."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("colmap")
    centres, keypoints, point_of = make_scene(rng)
    features = root / "features.h5"
    with open_h5(features, "w") as f:
        for name, kpts in zip(NAMES, keypoints):
            write_image_features(f, name, ImageFeatures(
                keypoints=kpts, descriptors=rng.standard_normal((len(kpts), 128)).astype(np.float32),
                scores=np.ones(len(kpts), np.float32), image_size=np.array([W, H], np.float32)))
        write_settings(f, {"source_kind": "video"})
    matches_path = root / "matches.h5"
    truth, outliers = {}, {}
    with open_h5(matches_path, "w") as f:
        for i in range(len(NAMES)):
            for j in range(i + 1, len(NAMES)):
                if (NAMES[i], NAMES[j]) == MISSING_PAIR:
                    continue
                index_in_j = {p: k for k, p in enumerate(point_of[j]) if p >= 0}
                matches0 = np.array([index_in_j.get(p, -1) if p >= 0 else -1 for p in point_of[i]])
                matches0[rng.random(len(matches0)) < 0.05] = -1  # missed matches
                true = {(a, b) for a, b in enumerate(matches0) if b >= 0}
                # outliers: some matched keypoints and some distractors get a random partner
                wrong = rng.random(len(matches0)) < OUTLIER_RATE
                matches0[wrong] = rng.integers(0, len(keypoints[j]), wrong.sum())
                pairs = {(a, b) for a, b in enumerate(matches0) if b >= 0}
                truth[NAMES[i], NAMES[j]] = true & pairs
                outliers[NAMES[i], NAMES[j]] = pairs - true
                write_pair_matches(f, NAMES[i], NAMES[j], matches0, rng.random(len(matches0)))
    return {"root": root, "features": features, "matches": matches_path, "keypoints": keypoints,
            "centres": centres, "truth": truth, "outliers": outliers}


@pytest.fixture(scope="module")
def verified(scene):
    """A verified database of the scene and the counts of write_database."""
    path = scene["root"] / "verified.db"
    counts = colmap.write_database(scene["features"], scene["matches"], path, verify=True)
    return path, counts


def matches_by_name(db):
    """(name0, name1) -> set of (index0, index1) of a database, in the order of NAMES."""
    names = {image.image_id: image.name for image in db.read_all_images()}
    out = {}
    pair_ids, matches = db.read_all_matches()
    for pair_id, m in zip(pair_ids, matches):
        id0, id1 = pycolmap.pair_id_to_image_pair(pair_id)
        if NAMES.index(names[id0]) > NAMES.index(names[id1]):
            id0, id1, m = id1, id0, m[:, ::-1]
        out[names[id0], names[id1]] = {tuple(int(v) for v in row) for row in m}
    return out


def test_database_holds_the_images_keypoints_and_raw_matches(scene, tmp_path):
    path = tmp_path / "raw.db"
    counts = colmap.write_database(scene["features"], scene["matches"], path)
    written = {pair: scene["truth"][pair] | scene["outliers"][pair] for pair in scene["truth"]}
    assert counts == {"images": 6, "cameras": 1, "keypoints": sum(map(len, scene["keypoints"])),
                      "pairs": 14, "matches": sum(map(len, written.values()))}
    assert [p.name for p in tmp_path.iterdir()] == ["raw.db"]  # no temporary file left

    with pycolmap.Database.open(str(path)) as db:
        assert db.num_images() == 6 and db.num_cameras() == 1
        assert db.num_verified_image_pairs() == 0
        camera = db.read_all_cameras()[0]
        assert camera.model_name == "SIMPLE_RADIAL" and (camera.width, camera.height) == (W, H)
        np.testing.assert_allclose(camera.params, [1.2 * W, W / 2, H / 2, 0.0])
        for name, kpts in zip(NAMES, scene["keypoints"]):
            image = db.read_image_with_name(name)
            assert image is not None, name
            stored = db.read_keypoints(image.image_id)
            assert stored.shape[0] == len(kpts) == db.num_keypoints_for_image(image.image_id)
            np.testing.assert_allclose(stored[:, :2], kpts + 0.5, atol=1e-4)  # corner convention
        assert db.num_frames() == 6 and db.num_rigs() == 1
        assert matches_by_name(db) == written


def test_verification_keeps_the_true_matches(scene, verified):
    path, counts = verified
    assert counts["verified_pairs"] == 14
    with pycolmap.Database.open(str(path)) as db:
        names = {image.image_id: image.name for image in db.read_all_images()}
        pair_ids, geometries = db.read_two_view_geometries()
        assert len(pair_ids) == 14
        total = accepted = outliers = 0
        for pair_id, geometry in zip(pair_ids, geometries):
            id0, id1 = pycolmap.pair_id_to_image_pair(pair_id)
            inliers = {tuple(int(v) for v in row) for row in geometry.inlier_matches}
            total += len(inliers)
            pair = (names[id0], names[id1])
            if pair not in scene["truth"]:
                pair, inliers = pair[::-1], {(b, a) for a, b in inliers}
            true, wrong = scene["truth"][pair], scene["outliers"][pair]
            assert len(inliers & true) >= 0.95 * len(true), pair
            accepted += len(inliers & wrong)
            outliers += len(wrong)
    # an outlier that falls near its epipolar line passes any two-view check: a few do
    assert accepted <= 0.1 * outliers
    assert counts["inlier_matches"] == total


def test_mapping_recovers_every_camera(scene, verified, tmp_path):
    path, _ = verified
    rec = colmap.map_database(path, None, tmp_path / "out", options={"num_threads": 1})
    assert rec.num_reg_images() == 6
    stats = colmap.summarize(rec)
    assert stats["registered_images"] == 6 and stats["images"] == 6
    assert stats["registered_names"] == NAMES
    assert stats["mean_reprojection_error"] < 1.0
    assert stats["mean_reprojection_error"] == pytest.approx(rec.compute_mean_reprojection_error())
    assert stats["points3D"] == rec.num_points3D() > 300
    assert stats["mean_track_length"] == pytest.approx(rec.compute_mean_track_length())
    # the focal length is found and the camera path is the true one up to scale
    (camera,) = rec.cameras.values()
    assert camera.focal_length == pytest.approx(F, rel=0.03)
    images = sorted(rec.images.values(), key=lambda image: image.name)
    centres = np.array([image.projection_center() for image in images])

    def shape(c):
        d = np.linalg.norm(c[:, None] - c[None], axis=-1)
        return d / d.sum()

    np.testing.assert_allclose(shape(centres), shape(scene["centres"]), atol=2e-3)

    # the kept model is on disk, and only it
    out = tmp_path / "out"
    assert [p.name for p in out.iterdir()] == ["sparse"]
    again = pycolmap.Reconstruction(str(out / "sparse"))
    assert again.num_reg_images() == 6 and again.num_points3D() == rec.num_points3D()


def test_mapping_needs_a_verified_database(scene, tmp_path):
    path = tmp_path / "raw.db"
    colmap.write_database(scene["features"], scene["matches"], path)
    with pytest.raises(ValueError, match="verify=True"):
        colmap.map_database(path, None, tmp_path / "out")
    with pytest.raises(ValueError, match="image_dir"):
        colmap.map_database(path, tmp_path / "no-images", tmp_path / "out")


def test_mapping_fails_clearly_when_nothing_registers(scene, tmp_path):
    path = tmp_path / "two.db"
    pairs = [(NAMES[2], NAMES[3])]
    colmap.write_database(scene["features"], scene["matches"], path, pairs=pairs, verify=True)
    # 12 degrees apart: no initial pair passes a 60 degree triangulation angle, even relaxed
    options = {"mapper": {"init_min_tri_angle": 60.0}, "init_num_trials": 2}
    with pytest.raises(SpecglueError, match="mapping .* failed: no model was kept"):
        colmap.map_database(path, None, tmp_path / "out", options=options)
    with pytest.raises(ValueError, match="bogus"):
        colmap.map_database(path, None, tmp_path / "out", options={"bogus": 1})


def two_image_files(folder, sizes, settings):
    """A features file of two images of ``sizes`` (name -> (W, H)) with 3 keypoints each and
    ``settings``, and a matches file with 2 matches between them."""
    features, matches = folder / "two.h5", folder / "two-matches.h5"
    with open_h5(features, "w") as f:
        for name, size in sizes.items():
            write_image_features(f, name, ImageFeatures(
                keypoints=np.zeros((3, 2), np.float32), descriptors=np.zeros((3, 4), np.float32),
                scores=np.ones(3, np.float32), image_size=np.array(size, np.float32)))
        write_settings(f, settings)
    with open_h5(matches, "w") as f:
        write_pair_matches(f, *sizes, np.array([0, 1, -1]), np.ones(3))
    return features, matches


def test_camera_modes(scene, tmp_path):
    counts = colmap.write_database(scene["features"], scene["matches"], tmp_path / "a.db",
                                   camera_mode="per-image", camera_model="PINHOLE")
    assert counts["cameras"] == 6
    with pycolmap.Database.open(str(tmp_path / "a.db")) as db:
        assert {c.model_name for c in db.read_all_cameras()} == {"PINHOLE"}
        assert db.num_rigs() == 6 and db.num_frames() == 6

    # auto: a folder of photos (no video setting) or several sizes -> one camera per image
    features, matches = two_image_files(tmp_path, {"a.jpg": (W, H), "b.jpg": (H, W)}, {"source_kind": "video"})
    counts = colmap.write_database(features, matches, tmp_path / "b.db")
    assert counts["cameras"] == 2 and counts["matches"] == 2
    with pytest.raises(ValueError, match="one size"):
        colmap.write_database(features, matches, tmp_path / "c.db", camera_mode="single")
    assert not (tmp_path / "c.db").exists()


def test_cameras_take_the_exif_focal_of_the_source_photos(tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    exif = Image.Exif()
    exif[0x8769] = {0xA405: 50}  # FocalLengthIn35mmFilm, in the Exif sub-IFD
    pixels = Image.fromarray(np.full((H, W, 3), 128, np.uint8))
    pixels.save(photos / "exif.jpg", exif=exif)
    pixels.save(photos / "plain.jpg")
    features, matches = two_image_files(tmp_path, {"exif.jpg": (W, H), "plain.jpg": (W, H)},
                                        {"source_kind": "folder", "source": str(photos)})
    colmap.write_database(features, matches, tmp_path / "e.db")
    with pycolmap.Database.open(str(tmp_path / "e.db")) as db:
        cameras = {db.read_image(i.image_id).name: db.read_camera(i.camera_id) for i in db.read_all_images()}
    # 50 mm on a 35 mm film is a longer lens than COLMAP's 1.2 * max(W, H) guess
    assert cameras["exif.jpg"].has_prior_focal_length and cameras["exif.jpg"].focal_length > 1.3 * W
    assert not cameras["plain.jpg"].has_prior_focal_length and cameras["plain.jpg"].focal_length == 1.2 * W


def test_pairs_argument(scene, tmp_path):
    # reversed and repeated pairs go in once, the right way round
    pairs = [(NAMES[1], NAMES[0]), (NAMES[0], NAMES[1]), (NAMES[2], NAMES[5])]
    counts = colmap.write_database(scene["features"], scene["matches"], tmp_path / "p.db",
                                   pairs=pairs)
    assert counts["pairs"] == 2
    with pycolmap.Database.open(str(tmp_path / "p.db")) as db:
        got = matches_by_name(db)
    for pair in [(NAMES[0], NAMES[1]), (NAMES[2], NAMES[5])]:
        assert got[pair] == scene["truth"][pair] | scene["outliers"][pair]

    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text(f"{NAMES[3]} {NAMES[4]}\n")
    counts = colmap.write_database(scene["features"], scene["matches"], tmp_path / "f.db",
                                   pairs=pairs_file)
    assert counts["pairs"] == 1


def test_bad_input(scene, tmp_path):
    args = (scene["features"], scene["matches"])
    with pytest.raises(ValueError, match="SIMPLE_RADIAL.*OPENCV"):
        colmap.write_database(*args, tmp_path / "x.db", camera_model="SIMPLE_RADIALL")
    with pytest.raises(ValueError, match="camera_mode"):
        colmap.write_database(*args, tmp_path / "x.db", camera_mode="shared")
    with pytest.raises(ValueError, match="'nope.jpg' is not in the features file"):
        colmap.write_database(*args, tmp_path / "x.db", pairs=[(NAMES[0], "nope.jpg")])
    with pytest.raises(ValueError, match="another list of pairs"):
        colmap.write_database(*args, tmp_path / "x.db", pairs=[MISSING_PAIR])
    assert list(tmp_path.iterdir()) == []

    existing = tmp_path / "existing.db"
    existing.write_bytes(b"keep me")
    with pytest.raises(ValueError, match="already exists"):
        colmap.write_database(*args, existing)
    # with overwrite, a failure half way still leaves the old database as it was
    with pytest.raises(ValueError, match="another list of pairs"):
        colmap.write_database(*args, existing, pairs=[(NAMES[0], NAMES[1]), MISSING_PAIR],
                              overwrite=True)
    assert existing.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["existing.db"]
    counts = colmap.write_database(*args, existing, overwrite=True)
    assert counts["pairs"] == 14
    with pycolmap.Database.open(str(existing)) as db:
        assert db.num_images() == 6

    with pytest.raises(ValueError, match="does not exist"):
        colmap.write_database(tmp_path / "none.h5", scene["matches"], tmp_path / "y.db")
