"""Collections made from the shared laparoscopic frames, extracted once per session."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from specglue.collection.extract import ExtractionSettings, extract_features

LAPAROSCOPIC = "10_laparoscopic_cholecystectomy_sequence_rvim/frames"
#: small and fast: 320x240 frames, at most 256 keypoints
SMALL = ExtractionSettings(max_num_keypoints=256)


@pytest.fixture(scope="session")
def frames_dir(data_dir: Path) -> Path:
    return data_dir / LAPAROSCOPIC


@pytest.fixture(scope="session")
def lap_features(frames_dir: Path, tmp_path_factory) -> Path:
    """features.h5 of the 12 laparoscopic frames (specularity detected)."""
    out = tmp_path_factory.mktemp("lap") / "features.h5"
    extract_features(frames_dir, out, SMALL, progress=False)
    return out


@pytest.fixture(scope="session")
def lap_video(frames_dir: Path, tmp_path_factory) -> Path:
    """An MPEG-4 video of the 12 laparoscopic frames, 10 frames per second."""
    path = tmp_path_factory.mktemp("video") / "laparoscopic.mp4"
    frames = sorted(frames_dir.glob("*.png"))
    first = cv2.imread(str(frames[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, first.shape[1::-1])
    assert writer.isOpened(), "OpenCV cannot write MPEG-4 here"
    for frame in frames:
        writer.write(cv2.imread(str(frame)))
    writer.release()
    return path
