"""match_pair: the one-call API on real photos with known homographies."""

import cv2
import numpy as np
import pytest
import torch

from specglue.geometry import corner_error, rotation_homography, sample_homography, warp_image, warp_points
from specglue.images import load_image
from specglue.pipeline import load_mask, match_pair

GRAF = "06_oxford_graffiti_homography"


@pytest.mark.slow
def test_real_photo_under_known_homography(warped_pair):
    image0, image1, H = warped_pair
    result = match_pair(image0, image1, specular=None, geometry="homography", max_num_keypoints=1024, resize=None)
    err = np.linalg.norm(warp_points(result.points0, H) - result.points1, axis=1)
    assert len(err) > 300
    assert (err < 3).mean() >= 0.90
    h, w = image0.shape[:2]
    assert corner_error(result.geometry.model, H, w, h) < 2.0
    assert result.geometry.inlier_ratio > 0.9


@pytest.mark.slow
def test_graffiti_viewpoint_change(data_dir):
    H = np.loadtxt(data_dir / GRAF / "H1to2p")
    result = match_pair(data_dir / GRAF / "img1.png", data_dir / GRAF / "img2.png", specular=None,
                        geometry="homography", max_num_keypoints=1024, resize=None)
    err = np.linalg.norm(warp_points(result.points0, H) - result.points1, axis=1)
    assert (err < 3).mean() > 0.85 and len(err) > 300
    assert corner_error(result.geometry.model, H, *result.image_size0) < 3.0


def test_inputs_as_tensor_array_and_path_agree(data_dir, warped_pair):
    path = data_dir / GRAF / "img1.png"
    array = load_image(path)
    tensor = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    from_path = match_pair(path, path, specular=None, max_num_keypoints=256, resize=320)
    from_array = match_pair(array, tensor, specular=None, max_num_keypoints=256, resize=320)
    np.testing.assert_array_equal(from_path.matches, from_array.matches)
    # an image matched with itself matches (nearly) every keypoint to itself
    same = from_path.matches[:, 0] == from_path.matches[:, 1]
    assert same.mean() > 0.95 and len(same) > 0.8 * len(from_path.keypoints0)


def test_given_masks_are_respected(warped_pair):
    image0, image1, _ = warped_pair
    h, w = image0.shape[:2]
    mask0 = np.zeros((h, w), bool)
    mask0[:, : w // 2] = True
    result = match_pair(image0, image1, specular=(mask0, None), max_num_keypoints=512, resize=None, mask_margin=0)
    x = result.points0[:, 0]
    assert len(x) > 50 and (np.round(x) >= w // 2).all()
    assert result.mask0 is mask0 or np.array_equal(result.mask0, mask0)
    assert result.mask1 is None
    assert result.specularity0.shape == (len(result.keypoints0),)


def test_auto_masks_come_from_the_detector(warped_pair):
    from specglue.specular import detect

    image0, image1, _ = warped_pair
    result = match_pair(image0, image1, specular="auto", max_num_keypoints=256, resize=None)
    np.testing.assert_array_equal(result.mask0, detect(image0))


def test_bad_inputs(tmp_path, warped_pair):
    image0, image1, _ = warped_pair
    with pytest.raises(FileNotFoundError, match="image0: no such file"):
        match_pair(tmp_path / "missing.png", image1)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="corrupt.png is not a readable image"):
        match_pair(image0, corrupt)
    with pytest.raises(ValueError, match=r"mask0 has size \(10, 10\)"):
        match_pair(image0, image1, specular=(np.zeros((10, 10), bool), None))
    with pytest.raises(ValueError, match="Unknown features 'orb'"):
        match_pair(image0, image1, features="orb")
    with pytest.raises(ValueError, match="geometry must be"):
        match_pair(image0, image1, geometry="affine")
    with pytest.raises(ValueError, match=r"mask1 has size"):
        load_mask(np.zeros((3, 4)), (4, 3), "mask1")


def _low_texture_pair(data_dir, frame: str, size):
    """A smooth, dim endoscopy frame (blurred, darkened) and its warp by a known homography."""
    image = cv2.resize(load_image(data_dir / frame), size, interpolation=cv2.INTER_AREA)
    image = np.clip(cv2.GaussianBlur(image, (0, 0), 2.0).astype(np.float32) * 0.6, 0, 255).astype(np.uint8)
    w, h = size
    H = sample_homography(h, w, rng=1)
    return image, warp_image(image, H, (w, h)), H


@pytest.mark.slow
@pytest.mark.parametrize("frame, size", [
    ("10_laparoscopic_cholecystectomy_sequence_rvim/frames/frame_00.png", (320, 240)),
    ("09_ead2019_endoscopy_artefacts_specularity/frames_bbox/00017.jpg", (480, 480)),
])
def test_low_texture_endoscopy_defaults(data_dir, frame, size):
    """Bronchoscopy-like frames: the defaults find keypoints and precise matches, where the
    official detection (upsampled to 1024 px, threshold 0.2, no floor) finds almost none."""
    image0, image1, H = _low_texture_pair(data_dir, frame, size)
    official = match_pair(image0, image1, upsample=True, extractor_conf={"keypoint_floor": 0})
    assert len(official.matches) < 20
    result = match_pair(image0, image1)
    assert min(len(result.keypoints0), len(result.keypoints1)) >= 512
    err = np.linalg.norm(warp_points(result.points0, H) - result.points1, axis=1)
    assert len(err) >= 300
    assert (err < 3).mean() >= 0.9


def test_rotations_keep_the_turn_that_matches(warped_pair):
    """Image 1 upside down: the official weights fail at 0 degrees; with rotations (0, 180) the
    half turn wins, and its keypoints come back in image 1's own pixels."""
    image0, _, _ = warped_pair
    h, w = image0.shape[:2]
    image1 = np.ascontiguousarray(image0[::-1, ::-1])  # x -> w - 1 - x, y -> h - 1 - y
    upright = match_pair(image0, image1, specular=None, max_num_keypoints=512, resize=None)
    both = match_pair(image0, image1, specular=None, max_num_keypoints=512, resize=None, rotations=(0, 180))
    assert both.config["rotation1"] == 180 and both.config["rotations"] == [0, 180]
    assert len(both.matches) > 300 > 10 * len(upright.matches)
    err = np.linalg.norm(both.points1 - ([w - 1, h - 1] - both.points0), axis=1)
    assert (err < 3).mean() > 0.9
    assert both.keypoints1[:, 0].max() < w and both.keypoints1[:, 1].max() < h
    # a quarter turn on a non-square image: keypoints come back through the inverse map
    quarter = np.ascontiguousarray(np.rot90(image0, 1))  # (x, y) -> (y, w - 1 - x)
    turned = match_pair(image0, quarter, specular=None, max_num_keypoints=512, resize=None, rotations=(0, 270))
    assert turned.config["rotation1"] == 270 and len(turned.matches) > 300
    expected = np.stack([turned.points0[:, 1], w - 1 - turned.points0[:, 0]], 1)
    assert (np.linalg.norm(turned.points1 - expected, axis=1) < 3).mean() > 0.9
    assert turned.keypoints1[:, 0].max() < h and turned.keypoints1[:, 1].max() < w
    for bad in ((0, 45), (0, 0), "0,180", (0, True)):
        with pytest.raises(ValueError, match="rotations must be distinct multiples of 90"):
            match_pair(image0, image1, specular=None, rotations=bad)
    with pytest.raises(ValueError, match="'aliked_rot' are a matcher for 'aliked' features"):
        match_pair(image0, image1, specular=None, features="disk", weights="aliked_rot")


@pytest.mark.slow
def test_rotation_aware_weights_match_at_any_angle(warped_pair):
    """aliked_rot brings its extractor (ALIKED-n16rot) and matches a 120-degree turn in one call
    and, with the half turn, a 170-degree one, where the official weights find nothing right."""
    image0, _, _ = warped_pair
    h, w = image0.shape[:2]
    for angle, rotations in ((120, (0,)), (170, (0, 180))):
        H, size = rotation_homography(w, h, angle)
        image1 = warp_image(image0, H, size)
        official = match_pair(image0, image1, specular=None, max_num_keypoints=1024)
        rotation_aware = match_pair(image0, image1, specular=None, max_num_keypoints=1024, weights="aliked_rot",
                                    rotations=rotations)
        assert rotation_aware.config["extractor"]["model_name"] == "aliked-n16rot"
        correct = {}
        for name, result in (("official", official), ("aliked_rot", rotation_aware)):
            err = np.linalg.norm(warp_points(result.points0, H) - result.points1, axis=1)
            correct[name] = int((err < 3).sum())
        assert correct["official"] < 30 and correct["aliked_rot"] > 200, (angle, correct)
    with pytest.raises(ValueError, match="aliked_rot.*model_name='aliked-n16rot'"):
        match_pair(image0, image1, specular=None, weights="aliked_rot", extractor_conf={"model_name": "aliked-n16"})


def test_too_small_image_is_named(data_dir):
    image = np.full((8, 8, 3), 128, np.uint8)
    with pytest.raises(ValueError, match=r"image0: .*too small.*8x8 px.*at least 32 px"):
        match_pair(image, image, specular=None)


@pytest.mark.slow
def test_roi_auto_keeps_sinus_keypoints_in_the_view_and_photos_unmasked(data_dir, warped_pair):
    sinus = data_dir / "13_sinus_endoscopy_sfm_poses"
    frames = [cv2.resize(load_image(sinus / n), (640, 360), interpolation=cv2.INTER_AREA)
              for n in ("00004590.jpg", "00004600.jpg")]
    result = match_pair(frames[0], frames[1], specular=None, max_num_keypoints=512)
    assert result.roi0 is not None and result.roi1 is result.roi0 and result.config["roi"] == "auto"
    for kpts in (result.keypoints0, result.keypoints1):
        xy = np.round(kpts).astype(int)
        assert len(xy) > 100 and result.roi0[xy[:, 1], xy[:, 0]].all()
    everywhere = match_pair(frames[0], frames[1], specular=None, max_num_keypoints=512, roi=None)
    xy = np.round(everywhere.keypoints0).astype(int)
    assert everywhere.roi0 is None and not result.roi0[xy[:, 1], xy[:, 0]].all()

    photo = match_pair(warped_pair[0], warped_pair[1], specular=None, max_num_keypoints=256)
    assert photo.roi0 is None and photo.roi1 is None
    with pytest.raises(ValueError, match=r"roi: a mask must be \[H, W\]"):
        match_pair(frames[0], frames[1], roi=np.ones((10, 10), bool))
