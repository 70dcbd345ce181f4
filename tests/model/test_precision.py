"""The opt-in mixed precision (mp=True: bf16 autocast on CPU, fp16 on CUDA) stays close to fp32
on a real pair."""

import logging

import pytest
import torch

from specglue import LightGlue
from specglue.model import lightglue as lightglue_module

from ..conftest import pair_paths, to_device


@pytest.mark.slow
def test_mixed_precision_agrees_with_fp32(reference_features, data_dir, device):
    p0, p1 = pair_paths(data_dir, "sacre_coeur")
    data = to_device({"image0": reference_features("aliked", p0, 512, 512),
                      "image1": reference_features("aliked", p1, 512, 512)}, device)
    with torch.inference_mode():
        full = LightGlue(features="aliked").eval().to(device)(data)
        half = LightGlue(features="aliked", mp=True).eval().to(device)(data)
    assert half["matching_scores0"].dtype == torch.float32 and torch.isfinite(half["matching_scores0"]).all()
    matched = full["matches0"] > -1
    agree = (half["matches0"][matched] == full["matches0"][matched]).float().mean().item()
    assert agree > 0.9, f"bf16 keeps only {agree:.1%} of the fp32 matches"
    assert abs(int((half["matches0"] > -1).sum()) - int(matched.sum())) < 0.1 * int(matched.sum())


def test_mp_on_a_cpu_without_native_bf16_warns_once(monkeypatch, caplog):
    data = {f"image{k}": {"keypoints": torch.rand(1, 32, 2) * 100, "descriptors": torch.randn(1, 32, 128),
                          "image_size": torch.tensor([[100, 100]])} for k in (0, 1)}
    for native, warnings in ((False, 1), (True, 0)):
        monkeypatch.setattr(lightglue_module, "native_bf16", lambda native=native: native)
        caplog.clear()
        model = LightGlue(features="aliked", mp=True).eval()
        with caplog.at_level(logging.WARNING, logger="specglue.model.lightglue"), torch.inference_mode():
            model(data)
            model(data)
        assert sum("without native bf16" in r.getMessage() for r in caplog.records) == warnings
