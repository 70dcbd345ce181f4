"""Tests for specglue.specular.read_mask / write_mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from specglue.specular import read_mask, write_mask


class TestMaskIO:
    def test_round_trip_numpy(self, tmp_path):
        mask = np.random.default_rng(0).random((37, 53)) > 0.7
        path = write_mask(tmp_path / "a" / "b" / "mask.png", mask)  # parents are created
        on_disk = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert on_disk.dtype == np.uint8 and on_disk.shape == (37, 53)
        assert set(np.unique(on_disk)) == {0, 255}
        back = read_mask(path)
        assert back.dtype == bool
        np.testing.assert_array_equal(back, mask)

    @pytest.mark.parametrize("dtype", [torch.bool, torch.float32])
    def test_round_trip_torch(self, tmp_path, dtype):
        mask = torch.rand(20, 30, generator=torch.Generator().manual_seed(1)) > 0.5
        write_mask(str(tmp_path / "m.png"), mask.to(dtype))
        np.testing.assert_array_equal(read_mask(str(tmp_path / "m.png")), mask.numpy())

    def test_any_nonzero_pixel_is_true(self, tmp_path):
        colour = np.zeros((4, 5, 3), np.uint8)
        colour[1, 2, 0] = 1
        colour[3, 4, 2] = 200
        cv2.imwrite(str(tmp_path / "c.png"), colour)
        expected = np.zeros((4, 5), bool)
        expected[1, 2] = expected[3, 4] = True
        np.testing.assert_array_equal(read_mask(tmp_path / "c.png"), expected)

    def test_errors_name_the_file(self, tmp_path):
        missing = tmp_path / "nope.png"
        with pytest.raises(FileNotFoundError, match="nope.png"):
            read_mask(missing)
        junk = tmp_path / "junk.png"
        junk.write_text("not an image")
        with pytest.raises(ValueError, match="junk.png"):
            read_mask(junk)
        (tmp_path / "folder").mkdir()
        with pytest.raises(FileNotFoundError, match="folder"):
            read_mask(tmp_path / "folder")

    def test_write_rejects_bad_mask(self, tmp_path):
        with pytest.raises(ValueError, match=r"\[H, W\]"):
            write_mask(tmp_path / "m.png", np.zeros((2, 3, 3), bool))
        with pytest.raises(ValueError, match="png"):
            write_mask(tmp_path / "m.jpg", np.zeros((2, 3), bool))
        with pytest.raises(TypeError, match="mask"):
            write_mask(tmp_path / "m.png", [[True]])
