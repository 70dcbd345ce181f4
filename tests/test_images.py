"""The one image loader: files, arrays and tensors; shrinking with its pixel map; folders."""

import cv2
import numpy as np
import pytest
import torch

from specglue.images import list_images, load_image, resize_max, to_tensor


def test_file_array_and_tensor_agree(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), rgb[:, :, ::-1])
    from_file = load_image(tmp_path / "a.png")
    assert from_file.dtype == np.uint8 and np.array_equal(from_file, rgb)
    assert np.array_equal(load_image(rgb.astype(np.float32) / 255), rgb)
    assert np.array_equal(load_image(to_tensor(rgb)), rgb)


def test_bad_files_name_the_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="image0: no such file"):
        load_image(tmp_path / "missing.png", "image0")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="image1: .*bad.png is not a readable image"):
        load_image(tmp_path / "bad.png", "image1")


def test_resize_max_only_shrinks_and_maps_pixels():
    image = np.zeros((100, 200, 3), np.uint8)
    small, S = resize_max(image, 100)
    assert small.shape == (50, 100, 3)
    # pixel centres: x' = (x + 0.5) * s - 0.5, so the image border -0.5 stays at -0.5
    assert np.allclose(S @ [-0.5, -0.5, 1], [-0.5, -0.5, 1]) and np.allclose(S @ [199.5, 99.5, 1], [99.5, 49.5, 1])
    same, S = resize_max(image, 400)
    assert same.shape == image.shape and np.allclose(S, np.eye(3))
    with pytest.raises(ValueError, match="resize must be a positive"):
        resize_max(image, 0)


def test_list_images_is_recursive_and_sorted(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.jpg", "sub/a.PNG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["b.jpg", "sub/a.PNG"]
    with pytest.raises(ValueError, match="does not exist"):
        list_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image"):
        list_images(tmp_path / "empty")


def test_to_tensor_layout():
    t = to_tensor(np.full((4, 5, 3), 255, np.uint8))
    assert t.shape == (3, 4, 5) and t.dtype == torch.float32 and torch.all(t == 1)
