"""FrameMatcher: a video streamed frame by frame on real endoscopy."""

import dataclasses

import numpy as np
import pytest

from specglue import FrameMatcher, MatchResult
from specglue.presets import get_preset
from specglue.images import load_image

LAPAROSCOPIC = "10_laparoscopic_cholecystectomy_sequence_rvim/frames"


@pytest.fixture(scope="module")
def frames(data_dir):
    paths = sorted((data_dir / LAPAROSCOPIC).iterdir())[:3]
    return [load_image(p) for p in paths]


@pytest.mark.slow
def test_each_frame_is_matched_with_the_previous_one(frames):
    # the realtime preset without compiling the extractor (the compilation takes ~30 s)
    preset = dataclasses.replace(get_preset("realtime"), compile_extractor=False)
    matcher = FrameMatcher(preset, device="cpu")
    assert matcher(frames[0]) is None and set(matcher.timings) == {"extract_ms"}
    result = matcher(frames[1])
    assert isinstance(result, MatchResult) and set(matcher.timings) == {"extract_ms", "match_ms"}
    assert len(result.keypoints0) <= 512 and len(result.matches) > 50
    assert result.mask0 is not None and result.config["specular_mode"] == "cross"
    # consecutive frames: the matched points barely move
    shift = np.median(np.linalg.norm(result.points0 - result.points1, axis=1))
    assert shift < 10
    following = matcher(frames[2])
    # image 0 of the next pair is the frame before: its features are reused, not extracted again
    assert np.array_equal(following.keypoints0, result.keypoints1)
    matcher.reset()
    assert matcher(frames[0]) is None


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="specular"):
        FrameMatcher("fast", specular="masks/")
    with pytest.raises(ValueError, match="Unknown preset"):
        FrameMatcher("turbo")
    with pytest.raises(ValueError, match="specular_mode"):
        FrameMatcher("fast", specular_mode="bright")
