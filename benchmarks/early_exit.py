"""Where do the matches stop changing on endoscopy? LightGlue's early exit, layer by layer.

For each pair every layer runs (``LightGlue.forward_train``: no exit, no pruning), and for each
layer ``i`` it gives:

- ``agree``: the share of the last layer's matches that layer ``i``'s assignment head already
  gives (same partner; matches as in ``forward``: mutual, score > 0.1);
- ``confident``: the exit statistic the matcher compares with ``depth_confidence`` after layer
  ``i``: the share of matchable keypoints whose token confidence clears that layer's threshold.

From these, for each ``depth_confidence`` the layer a pair would stop after and the agreement
there. Pairs: the sinus sequence (``13_sinus_endoscopy_sfm_poses``, gaps 1, 5 and 10, presets'
features with detected highlight masks, the field of view and ``cross`` mode) and the 320x240
laparoscopic video (consecutive frames). The pose accuracy that each exit threshold keeps is in
``benchmarks/frontier.py --exits`` (docs/speed.md).

    python benchmarks/early_exit.py --out benchmarks/results/early_exit
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch

from specglue import LightGlue, specular
from specglue.eval.data import find_data_dir
from specglue.features import build_extractor
from specglue.features.roi import resolve_roi
from specglue.images import load_image
from specglue.model.heads import filter_matches
from specglue.ops.cpu import cpu_model
from specglue.presets import PRESETS

from report import write_report  # benchmarks/ is on sys.path

SINUS = "13_sinus_endoscopy_sfm_poses"
LAPAROSCOPIC = "10_laparoscopic_cholecystectomy_sequence_rvim/frames"
DEPTH_CONFIDENCES = (0.95, 0.9, 0.85, 0.8, 0.7)


def frames_of(folder: Path) -> List[np.ndarray]:
    return [load_image(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in (".png", ".jpg", ".jpeg")]


def features_of(frames: List[np.ndarray], preset: str) -> List[Dict[str, torch.Tensor]]:
    """Each frame's matcher input with the preset's extraction, masks and field of view."""
    extractor = build_extractor("aliked", **PRESETS[preset].extractor_conf()).eval()
    region = resolve_roi("auto", frames[:1], frames[0].shape[:2])
    views = []
    with torch.inference_mode():
        for rgb in frames:
            feats = extractor.extract(rgb, roi=region)
            view = {k: v for k, v in feats.items() if k in ("keypoints", "descriptors", "image_size")}
            view["specular_mask"] = torch.from_numpy(specular.detect(rgb))[None]
            views.append(view)
    return views


def layer_statistics(model: LightGlue, view0: Dict, view1: Dict) -> Tuple[np.ndarray, np.ndarray]:
    """agree [L] and confident [L - 1] of one pair (see the module docstring)."""
    with torch.no_grad():
        out = model.forward_train({"image0": view0, "image1": view1}, specular_mode="cross")
    threshold = model.conf.filter_threshold
    final = filter_matches(out["log_assignment"][-1], threshold)[0][0]  # [M]
    matched = final > -1
    agree = []
    for scores in out["log_assignment"]:
        layer = filter_matches(scores, threshold)[0][0]
        agree.append(float((layer[matched] == final[matched]).float().mean()) if matched.any() else 1.0)
    inner = out["log_assignment"][0][0, :-1, :-1]
    matchable0, matchable1 = torch.isfinite(inner).any(1), torch.isfinite(inner).any(0)
    confident = []
    for i, (conf0, conf1) in enumerate(out["confidence"]):
        limit = model.confidence_threshold(i)
        sure = int(((conf0[0] >= limit) & matchable0).sum() + ((conf1[0] >= limit) & matchable1).sum())
        confident.append(sure / max(1, int(matchable0.sum() + matchable1.sum())))
    return np.array(agree), np.array(confident)


def study(pairs: List[Tuple[Dict, Dict]], model: LightGlue) -> Dict[str, List[float]]:
    agree, confident = zip(*(layer_statistics(model, a, b) for a, b in pairs))
    agree, confident = np.stack(agree), np.stack(confident)  # [P, L], [P, L - 1]
    n_layers = agree.shape[1]
    exits = {}
    for depth in DEPTH_CONFIDENCES:
        # the matcher stops after the first layer whose statistic exceeds depth (else runs all)
        passed = confident > depth
        stop = np.where(passed.any(1), passed.argmax(1), n_layers - 1)  # [P] layer index
        exits[str(depth)] = {"mean_layers": float((stop + 1).mean()),
                             "agree": float(agree[np.arange(len(stop)), stop].mean())}
    return {"agree": agree.mean(0).tolist(), "confident": confident.mean(0).tolist(), "exits": exits,
            "pairs": len(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--presets", nargs="+", default=["accurate", "realtime"], choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path, default=None, help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    data = Path(args.data or find_data_dir())
    model = LightGlue(features="aliked").eval()
    sinus, laparoscopic = frames_of(data / SINUS), frames_of(data / LAPAROSCOPIC)
    results: Dict[str, Dict] = {}
    for preset in args.presets:
        views = features_of(sinus, preset)
        for gap in (1, 5, 10):
            pairs = [(views[i], views[i + gap]) for i in range(len(views) - gap)]
            results[f"sinus gap {gap}, {preset}"] = study(pairs, model)
        views = features_of(laparoscopic, preset)
        results[f"laparoscopic video, {preset}"] = study(list(zip(views[:-1], views[1:])), model)
        for name in list(results)[-4:]:
            print(name, json.dumps(results[name]["exits"]), flush=True)

    n_layers = model.conf.n_layers
    layer_header = " | ".join(str(i + 1) for i in range(n_layers))
    lines = [f"| pairs | n | {layer_header} |", "|---|---:|" + "---:|" * n_layers]
    for name, r in results.items():
        cells = [f"{100 * a:.0f} / {100 * c:.0f}" for a, c in zip(r["agree"], r["confident"])] + [
            f"{100 * r['agree'][-1]:.0f} / –"]
        lines.append(f"| {name} | {r['pairs']} | " + " | ".join(cells) + " |")
    exits = ["| pairs | " + " | ".join(f"depth {d}: layers, agree" for d in DEPTH_CONFIDENCES) + " |",
             "|---|" + "---:|" * len(DEPTH_CONFIDENCES)]
    for name, r in results.items():
        exits.append(f"| {name} | " + " | ".join(
            f"{r['exits'][str(d)]['mean_layers']:.1f}, {100 * r['exits'][str(d)]['agree']:.0f} %"
            for d in DEPTH_CONFIDENCES) + " |")
    header = (f"CPU: {cpu_model()}; official aliked_lightglue, cross mode with detected highlight masks "
              f"and the field of view; features of each preset (keypoints at size)")
    text = (f"{header}\n\nPer layer: % of the final matches already found / % of matchable keypoints "
            f"confident (the exit statistic)\n\n" + "\n".join(lines) +
            "\n\nWhere each depth_confidence would stop (mean layers run) and the share of the final "
            "matches found there\n\n" + "\n".join(exits))
    write_report(args.out, "Early exit on endoscopy", text, results)


if __name__ == "__main__":
    main()
