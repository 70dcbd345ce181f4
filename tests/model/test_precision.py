"""The opt-in precisions stay close to fp32 on a real pair: mixed precision (mp=True: bf16
autocast on CPU, fp16 on CUDA) and int8 linear layers (int8=True, CPU)."""

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from specglue import LightGlue
from specglue.model import lightglue as lightglue_module
from specglue.ops import cpu
from specglue.features import build_extractor
from specglue.geometry import warp_points
from specglue.ops.kernels import Linear, use_int8

from ..conftest import pair_paths, to_device


@pytest.mark.slow
def test_mixed_precision_agrees_with_fp32(reference_features, data_dir, device, monkeypatch):
    # bf16 numerics on every CPU: where it is not native, mp=True would run fp32 (tested below)
    monkeypatch.setattr(lightglue_module, "native_bf16", lambda: True)
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


def test_mp_on_a_cpu_without_native_bf16_runs_fp32_and_says_so(monkeypatch, caplog):
    torch.manual_seed(0)
    data = {f"image{k}": {"keypoints": torch.rand(1, 64, 2) * 100, "descriptors": torch.randn(1, 64, 128),
                          "image_size": torch.tensor([[100, 100]])} for k in (0, 1)}
    reference = LightGlue(features="aliked", depth_confidence=-1, width_confidence=-1).eval()
    with torch.inference_mode():
        fp32 = reference(data)
    for native in (False, True):
        monkeypatch.setattr(lightglue_module, "native_bf16", lambda native=native: native)
        caplog.clear()
        model = LightGlue(features="aliked", mp=True, depth_confidence=-1, width_confidence=-1).eval()
        with caplog.at_level(logging.WARNING, logger="specglue.model.lightglue"), torch.inference_mode():
            out = model(data)
            model(data)
        warnings = sum("no native bf16" in r.getMessage() for r in caplog.records)
        same = torch.equal(out["matching_scores0"], fp32["matching_scores0"])
        # without native bf16: exactly the fp32 forward, one warning; with it: bf16, silent
        assert (same, warnings) == ((True, 1) if not native else (False, 0))


needs_int8 = pytest.mark.skipif(not cpu.HAS_INT8_LINEAR, reason="no x86 quantized engine in this torch build")


@needs_int8
def test_int8_linear_is_quantized_and_close_to_fp32():
    torch.manual_seed(0)
    layer = Linear(256, 512, quantizable=True).eval()
    plain = Linear(256, 512).eval()
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 300, 256)
    with torch.no_grad():
        reference = F.linear(x, layer.weight, layer.bias)
        fp32 = plain(x)  # the pinned kernel's fp32 product (oneDNN or PyTorch: rounding apart, F.linear)
        assert torch.equal(layer(x), fp32)  # outside use_int8: fp32
        with use_int8():
            quantized, untouched = layer(x), plain(x)
    torch.testing.assert_close(fp32, reference, atol=1e-5, rtol=1e-5)
    error = ((quantized - reference).norm() / reference.norm()).item()
    assert 1e-4 < error < 0.03, f"int8 relative error {error:.4f}"  # quantized, yet close
    assert torch.equal(untouched, fp32)  # a layer that is not quantizable stays fp32
    with use_int8(), torch.enable_grad():  # training: fp32 with gradients
        trained = layer(x)
    assert trained.requires_grad and torch.allclose(trained, reference, atol=1e-5)


@needs_int8
def test_int8_weights_follow_parameter_updates():
    layer = Linear(64, 64, quantizable=True).eval()
    x = torch.randn(10, 64)
    with torch.no_grad(), use_int8():
        before = layer(x)
        layer.weight.mul_(2)  # a new version of the weight: packed again
        after = layer(x)
    assert torch.allclose(after - layer.bias, 2 * (before - layer.bias), rtol=0.05, atol=0.05)


@needs_int8
@pytest.mark.slow
def test_int8_matcher_is_as_correct_as_fp32_under_a_known_homography(warped_pair):
    image0, image1, H = warped_pair
    extractor = build_extractor("aliked", max_num_keypoints=1024, resize=None).eval()
    with torch.inference_mode():
        views = [{k: v for k, v in extractor.extract(image).items() if k != "keypoint_mask"}
                 for image in (image0, image1)]
    data = {"image0": views[0], "image1": views[1]}
    fp32, int8 = LightGlue(features="aliked").eval(), LightGlue(features="aliked", int8=True).eval()
    correct = {}
    for name, model in (("fp32", fp32), ("int8", int8)):
        with torch.inference_mode():
            matches = model(data)["matches"][0].numpy()
        points0 = views[0]["keypoints"][0].numpy()[matches[:, 0]]
        points1 = views[1]["keypoints"][0].numpy()[matches[:, 1]]
        correct[name] = (len(matches), float((np.linalg.norm(warp_points(points0, H) - points1, axis=1) < 3).mean()))
    assert any(key.endswith("_int8") for m in int8.modules() for key in m.__dict__), "no layer ran int8"
    assert abs(correct["int8"][0] - correct["fp32"][0]) < 0.1 * correct["fp32"][0], correct
    assert correct["int8"][1] > correct["fp32"][1] - 0.02, correct


def test_int8_and_mp_exclude_each_other():
    with pytest.raises(ValueError, match="exclude each other"):
        LightGlue(features="aliked", mp=True, int8=True)
