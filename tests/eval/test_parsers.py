"""HPatches / Oxford folders and SuperGlue pairs_with_gt files written into temp folders."""


import cv2
import numpy as np
import pytest

from specglue.eval.benchmarks import hpatches, pose
from specglue.geometry import warp_points
from specglue.images import load_image, resize_max


def write_image(path, w=64, h=48, seed=0):
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def write_H(path, H):
    np.savetxt(path, H)


H2 = np.array([[1.0, 0.1, 5], [0, 1.2, -3], [1e-4, 0, 1]])
H3 = np.array([[0.9, 0, 2], [0.05, 1, 1], [0, 2e-4, 1]])


class TestHPatches:
    def make_sequence(self, folder):
        folder.mkdir()
        for k in (1, 2, 3):
            write_image(folder / f"{k}.ppm", seed=k)
        write_H(folder / "H_1_2", H2)
        write_H(folder / "H_1_3", H3)
        return folder

    def test_single_sequence(self, tmp_path):
        seq = self.make_sequence(tmp_path / "v_test")
        pairs = hpatches.find_homography_pairs(seq)
        assert [p.name for p in pairs] == ["v_test-1-2", "v_test-1-3"]
        assert pairs[0].path0.name == "1.ppm" and pairs[1].path1.name == "3.ppm"
        assert np.allclose(pairs[0].H_0to1, H2) and np.allclose(pairs[1].H_0to1, H3)

    def test_folder_of_sequences(self, tmp_path):
        self.make_sequence(tmp_path / "i_a")
        self.make_sequence(tmp_path / "v_b")
        (tmp_path / "not_a_sequence").mkdir()
        pairs = hpatches.find_homography_pairs(tmp_path)
        assert [p.name for p in pairs] == ["i_a-1-2", "i_a-1-3", "v_b-1-2", "v_b-1-3"]

    def test_missing_homography_raises(self, tmp_path):
        seq = self.make_sequence(tmp_path / "v_test")
        (seq / "H_1_3").unlink()
        with pytest.raises(ValueError, match="H_1_3"):
            hpatches.find_homography_pairs(seq)

    def test_bad_homography_file_raises(self, tmp_path):
        seq = self.make_sequence(tmp_path / "v_test")
        (seq / "H_1_2").write_text("1 0 0\n0 1 0\n")
        with pytest.raises(ValueError, match="9 finite numbers"):
            hpatches.find_homography_pairs(seq)

    def test_empty_folder_raises(self, tmp_path):
        with pytest.raises(ValueError, match="holds no sequence"):
            hpatches.find_homography_pairs(tmp_path)


def test_oxford_layout(tmp_path):
    for k in (1, 2, 3):
        write_image(tmp_path / f"img{k}.png", seed=k)
    write_H(tmp_path / "H1to2p", H2)
    write_H(tmp_path / "H1to3p", H3)
    pairs = hpatches.find_homography_pairs(tmp_path)
    assert [(p.path0.name, p.path1.name) for p in pairs] == [("img1.png", "img2.png"), ("img1.png", "img3.png")]
    assert np.allclose(pairs[1].H_0to1, H3)


def test_real_graffiti_folder(data_dir):
    pairs = hpatches.find_homography_pairs(data_dir / "06_oxford_graffiti_homography")
    assert len(pairs) == 5
    assert pairs[0].H_0to1[0, 0] == pytest.approx(0.87976964)


def test_scaled_homography_matches_resized_pixels(tmp_path):
    write_image(tmp_path / "a.png", w=200, h=100)
    image, S = resize_max(load_image(tmp_path / "a.png"), 100)
    assert image.shape == (50, 100, 3)
    # a pure translation of 10 px becomes 5 px at half resolution
    T = np.array([[1, 0, 10.0], [0, 1, 0], [0, 0, 1]])
    assert np.allclose(hpatches.scaled_homography(T, S, S), [[1, 0, 5], [0, 1, 0], [0, 0, 1]])
    assert np.allclose(hpatches.scaled_homography(np.eye(3), S, S), np.eye(3))


PAIR_LINE = ("a.jpg b.jpg 0 1 500 0 32 0 500 24 0 0 1 510 0 30 0 510 20 0 0 1 "
             "1 0 0 0.5 0 1 0 0 0 0 1 0.1 0 0 0 1")


class TestPairsWithGt:
    def test_parse(self, tmp_path):
        f = tmp_path / "pairs.txt"
        f.write_text("# comment\n" + PAIR_LINE + "\n\n" + PAIR_LINE.replace("0 1 500", "2 3 500", 1) + "\n")
        pairs = pose.parse_pairs_with_gt(f)
        assert len(pairs) == 2
        p = pairs[0]
        assert (p.name0, p.name1, p.rot0, p.rot1) == ("a.jpg", "b.jpg", 0, 1)
        assert np.allclose(p.K0, [[500, 0, 32], [0, 500, 24], [0, 0, 1]])
        assert p.K1[0, 0] == 510
        assert np.allclose(p.T_0to1[:3, 3], [0.5, 0, 0.1]) and p.T_0to1[3, 3] == 1
        assert (pairs[1].rot0, pairs[1].rot1) == (2, 3)

    def test_wrong_field_count_names_the_line(self, tmp_path):
        f = tmp_path / "pairs.txt"
        f.write_text(PAIR_LINE + "\na.jpg b.jpg\n")
        with pytest.raises(ValueError, match=r"pairs.txt:2: expected 38 fields"):
            pose.parse_pairs_with_gt(f)

    def test_malformed_number(self, tmp_path):
        f = tmp_path / "pairs.txt"
        f.write_text(PAIR_LINE.replace("500", "five", 1))
        with pytest.raises(ValueError, match="malformed number"):
            pose.parse_pairs_with_gt(f)

    def test_real_scannet_file(self, data_dir):
        pairs = pose.parse_pairs_with_gt(data_dir / "03_superglue_scannet_pairs_gt" / "scannet_sample_pairs_with_gt.txt")
        assert len(pairs) == 15
        R = pairs[0].T_0to1[:3, :3]
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-3)


def test_keypoints_map_back_through_rotation(tmp_path):
    write_image(tmp_path / "a.png", w=80, h=40)
    image, A = pose._load_rotated(tmp_path / "a.png", 1)
    assert image.shape[:2] == (80, 40)  # turned to 40 x 80 (W x H); the extractor shrinks it later
    # the corner pixel centres of the turned image map to stored pixels inside the image
    corners = np.array([[-0.5, -0.5], [39.5, 79.5]])
    back = warp_points(corners, A)
    assert np.allclose(sorted(back[:, 0]), [-0.5, 79.5]) and np.allclose(sorted(back[:, 1]), [-0.5, 39.5])
