"""Image sources: which folders are sequences of numbered frames, and in what order they are read."""

import cv2
import numpy as np

from specglue.collection.pairs import image_names
from specglue.collection.sources import ImageSource, sequence_frames


def test_numbered_frames_make_a_sequence_in_frame_number_order():
    names = ["frame_10.png", "frame_9.png", "frame_100.png", "frame_11.png"]
    assert sequence_frames(names) == ["frame_9.png", "frame_10.png", "frame_11.png", "frame_100.png"]
    # gaps in the numbering (every 10th frame of a video) are still a sequence
    assert sequence_frames(["00004584.jpg", "00004594.jpg", "00004604.jpg"]) == [
        "00004584.jpg", "00004594.jpg", "00004604.jpg"]


def test_a_few_other_images_are_left_out_but_a_photo_collection_is_no_sequence():
    frames = [f"{i:08d}.jpg" for i in range(4584, 4590)]
    assert sequence_frames(frames + ["undistorted_mask.bmp"]) == frames
    assert sequence_frames(["IMG_1.jpg", "IMG_2.jpg", "DSC_1.jpg", "DSC_2.jpg", "other.png"]) is None
    assert sequence_frames(["a.jpg", "b.jpg", "c.jpg"]) is None  # no numbers
    assert sequence_frames(["f1.jpg", "f2.jpg"]) is None  # too short
    assert sequence_frames(["f1.jpg", "f2.jpg", "f3.png"]) is None  # suffixes differ: 2 frames only
    assert sequence_frames(["sub/f1.jpg", "sub/f2.jpg", "sub/f3.jpg"]) is None  # frames lie in the folder itself


def test_image_source_reads_a_sequence_folder_without_the_mask(tmp_path, caplog):
    for i in (12, 3, 7):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((8, 10, 3), i, np.uint8))
    cv2.imwrite(str(tmp_path / "mask.png"), np.zeros((8, 10), np.uint8))
    source = ImageSource(tmp_path)
    assert source.kind == "sequence"
    assert source.names() == ["img3.png", "img7.png", "img12.png"]
    assert "left out 1 other image(s): mask.png" in caplog.text
    assert [int(rgb[0, 0, 0]) for _, rgb in source.frames()] == [3, 7, 12]
    assert image_names(tmp_path) == ["img3.png", "img7.png", "img12.png"]

    (tmp_path / "mask.png").rename(tmp_path / "photo.png")
    cv2.imwrite(str(tmp_path / "other.png"), np.zeros((8, 10), np.uint8))
    cv2.imwrite(str(tmp_path / "third.png"), np.zeros((8, 10), np.uint8))
    assert ImageSource(tmp_path).kind == "folder"  # three others: a collection, read whole
