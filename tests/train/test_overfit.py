"""A tiny LightGlue trained with forward_train + lightglue_loss learns a real pair."""

from pathlib import Path

import pytest
import torch

from specglue import LightGlue
from specglue.features import build_extractor
from specglue.geometry import IGNORE, gt_matches_batch_from_homography
from specglue.model.heads import filter_matches
from specglue.specular import sample_mask
from specglue.train import lightglue_loss
from specglue.train.data import HomographyDataConf, HomographyPairs

pytestmark = pytest.mark.slow


def features_and_labels(data_dir: Path):
    pair = HomographyPairs(data_dir / "10_laparoscopic_cholecystectomy_sequence_rvim" / "frames",
                           HomographyDataConf(specular_probability=1.0), length=4)[1]
    extractor = build_extractor("aliked", max_num_keypoints=256, detection_threshold=0.0).eval()
    views = []
    for k in (0, 1):
        feats = extractor.extract(pair[f"image{k}"])
        feats["keypoint_specular"] = sample_mask(pair[f"specular_mask{k}"][None], feats["keypoints"], margin=3)
        views.append({key: v for key, v in feats.items() if key != "keypoint_mask"})
    gt = gt_matches_batch_from_homography(
        views[0]["keypoints"], views[1]["keypoints"], pair["H_0to1"][None], views[0]["image_size"],
        views[1]["image_size"], covered0=views[0]["keypoint_specular"] >= 0.5,
        covered1=views[1]["keypoint_specular"] >= 0.5)
    return {"image0": views[0], "image1": views[1]}, gt


def test_a_tiny_model_overfits_one_pair(data_dir):
    data, gt = features_and_labels(data_dir)
    positives = gt["matches0"] >= 0
    assert positives.sum() > 50 and (gt["matches0"] == IGNORE).sum() < positives.sum()
    torch.manual_seed(0)
    model = LightGlue(features=None, input_dim=128, descriptor_dim=64, num_heads=2, n_layers=2,
                      specular_mode="hard")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for step in range(150):
        losses = lightglue_loss(model.forward_train(data), gt["matches0"], gt["matches1"])
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        first = float(losses["total"].detach()) if first is None else first
    assert float(losses["total"].detach()) < 0.3 * first
    with torch.no_grad():
        final = model.forward_train(data)["log_assignment"][-1]
    matches0 = filter_matches(final, 0.1)[0]
    recall = float((matches0[positives] == gt["matches0"][positives]).float().mean())
    assert recall >= 0.95
    # the inference forward of the trained weights (full depth, no pruning) gives the same matches
    fixed = LightGlue(features=None, input_dim=128, descriptor_dim=64, num_heads=2, n_layers=2,
                      specular_mode="hard", depth_confidence=-1, width_confidence=-1, weights=model.state_dict())
    with torch.inference_mode():
        out = fixed.eval()(data)
    assert torch.equal(out["matches0"], matches0)
