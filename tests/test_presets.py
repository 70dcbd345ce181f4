"""Speed presets: what each sets, the precision chosen by the machine, and match_pair with one."""

import dataclasses

import numpy as np
import pytest
import torch

from specglue import LightGlue, presets
from specglue.confs import MAX_KEYPOINTS, PRESET_NAMES, RESIZE
from specglue.geometry import warp_points
from specglue.ops import cpu
from specglue.pipeline import match_pair



def test_presets_are_the_named_ones_and_accurate_is_the_default():
    assert tuple(presets.PRESETS) == PRESET_NAMES and presets.DEFAULT_PRESET in presets.PRESETS
    accurate = presets.get_preset("accurate")
    assert (accurate.max_num_keypoints, accurate.resize) == (MAX_KEYPOINTS, RESIZE)
    conf = accurate.lightglue_conf("cpu")
    assert conf == {"mp": False, "int8": False, "depth_confidence": LightGlue.default_conf["depth_confidence"],
                    "width_confidence": LightGlue.default_conf["width_confidence"],
                    "filter_threshold": LightGlue.default_conf["filter_threshold"]}
    with pytest.raises(ValueError, match="Unknown preset 'turbo'.*accurate"):
        presets.get_preset("turbo")


def test_precision_follows_the_machine(monkeypatch):
    fast = presets.get_preset("fast")
    assert fast.precision("cuda") == "fp16" and fast.lightglue_conf("cuda")["mp"] is True
    assert fast.precision("mps") == "fp32"
    for native, int8, expected in ((True, True, "bf16"), (False, True, "int8"), (False, False, "fp32")):
        monkeypatch.setattr(presets, "native_bf16", lambda native=native: native)
        monkeypatch.setattr(presets, "HAS_INT8_LINEAR", int8)
        assert fast.precision("cpu") == expected
        conf = fast.lightglue_conf("cpu")
        assert (conf["mp"], conf["int8"]) == (expected == "bf16", expected == "int8")
        LightGlue(features="aliked", **conf)  # a valid configuration whatever the machine
        assert presets.get_preset("accurate").precision("cpu") == "fp32"  # never lowered
    # emulated bf16 is never chosen: it is slower than fp32 (docs/speed.md)
    monkeypatch.setattr(presets, "native_bf16", lambda: False)
    assert all(p.precision("cpu") != "bf16" for p in presets.PRESETS.values())


@pytest.mark.slow
def test_match_pair_with_the_fast_preset_stays_accurate(warped_pair):
    image0, image1, H = warped_pair
    result = match_pair(image0, image1, specular=None, preset="fast", max_num_keypoints=1024)
    assert "fast: 1024 keypoints at 1024 px" in result.config["preset"]
    assert presets.get_preset("fast").precision("cpu") in result.config["preset"]
    err = np.linalg.norm(warp_points(result.points0, H) - result.points1, axis=1)
    assert len(err) > 300 and (err < 3).mean() >= 0.9
    own = match_pair(image0, image1, specular=None, preset=dataclasses.replace(
        presets.get_preset("fast"), max_num_keypoints=256, resize=320))  # a Preset object works too
    assert own.config["extractor"]["resize"] == 320 and len(own.keypoints0) <= 256
    with pytest.raises(ValueError, match="Unknown preset"):
        match_pair(image0, image1, preset="turbo")


@pytest.mark.skipif(not cpu.HAS_INT8_LINEAR, reason="no x86 quantized engine in this torch build")
def test_the_int8_path_is_the_fast_preset_on_an_avx2_cpu(monkeypatch):
    monkeypatch.setattr(presets, "native_bf16", lambda: False)
    model = LightGlue(features="aliked", **presets.get_preset("fast").lightglue_conf("cpu")).eval()
    assert model.conf.int8 and not model.conf.mp
    data = {f"image{k}": {"keypoints": torch.rand(1, 64, 2) * 200, "descriptors": torch.randn(1, 64, 128),
                          "image_size": torch.tensor([[200, 200]])} for k in (0, 1)}
    with torch.inference_mode():
        model(data)
    assert any("_int8" in key for m in model.modules() for key in m.__dict__), "no layer ran int8"
