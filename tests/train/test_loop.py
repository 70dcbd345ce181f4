"""specglue.train.loop: real training runs on the shared images (tiny matchers, few steps)."""

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from specglue import LightGlue
from specglue.cli import main as cli_main
from specglue.features import build_extractor
from specglue.geometry import sample_homography, warp_image
from specglue.images import load_image
from specglue.train import load_config, train
from specglue.train.config import dump_config
from specglue.train.loop import BEST, CHECKPOINT, export_weights, iter_metrics

pytestmark = pytest.mark.slow

LAPAROSCOPIC = "10_laparoscopic_cholecystectomy_sequence_rvim/frames"
PHANTOM = "12_phantom_bowel_metal_instrument_sequence_rvim/frames"


def tiny(data_dir: Path, output: Path, *extra: str):
    """A tiny random matcher on the endoscopy frames: seconds per run."""
    return load_config(None, [
        f"data.images=[{data_dir / LAPAROSCOPIC}, {data_dir / PHANTOM}]", "data.train_pairs=8", "data.val_pairs=4",
        "data.val_fraction=0.2", "data.homography.size=[160, 120]", "features.max_keypoints=128",
        "model.weights=null", "model.n_layers=2", "model.descriptor_dim=64", "model.num_heads=2",
        "optim.batch_size=2", "optim.lr=3e-3", "optim.warmup_steps=5", "optim.decay_start=1000",
        f"run.output={output}", "run.log_every=5", "run.val_every=10", "run.checkpoint_every=4", "run.num_threads=1",
        "run.progress=false", "run.tensorboard=false", *extra])


def train_rows(output: Path):
    return [r for r in iter_metrics(output / "metrics.csv") if r["split"] == "train"]


def test_fifty_steps_lower_the_loss_by_a_third(data_dir, tmp_path):
    output = train(tiny(data_dir, tmp_path / "run", "optim.steps=50", "run.tensorboard=true"))
    rows = train_rows(output)
    assert [r["step"] for r in rows] == list(range(5, 51, 5))
    assert rows[-1]["loss"] <= 0.7 * rows[0]["loss"], [r["loss"] for r in rows]
    assert rows[-1]["label_recall"] > rows[0]["label_recall"]
    val = [r for r in iter_metrics(output / "metrics.csv") if r["split"] == "val"]
    assert [r["step"] for r in val] == [0, 10, 20, 30, 40, 50]
    assert list((output / "tensorboard").glob("events.out.tfevents.*"))
    assert load_config(output / "config.yaml") == tiny(data_dir, tmp_path / "run", "optim.steps=50",
                                                       "run.tensorboard=true")


def test_bf16_fine_tuning_of_the_official_weights_with_masks_keeps_finite_losses(data_dir, tmp_path):
    """The official weights have large matchability logits: in bf16 sigmoid(z) rounds to 1 and
    the masked dustbin log(1 - sigmoid(z) e^w) was -inf (NaN losses from step 0)."""
    output = train(tiny(data_dir, tmp_path / "run", "model.weights=aliked_lightglue", "model.n_layers=9",
                        "model.descriptor_dim=256", "model.num_heads=4", "model.specular_mode=cross",
                        "data.homography.specular_probability=1.0", "model.withhold_masks=0.0",
                        "optim.lr=1e-5", "optim.steps=10", "run.precision=bf16"))
    rows = list(iter_metrics(output / "metrics.csv"))
    assert [(r["step"], r["split"]) for r in rows] == [(0, "val"), (5, "train"), (10, "train"), (10, "val")]
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in rows), rows
    assert rows[-1]["label_recall"] > 0.5  # still the official matcher


def test_a_stopped_and_resumed_run_equals_an_uninterrupted_one_bit_for_bit(data_dir, tmp_path):
    extra = ("model.withhold_masks=0.5", "model.specular_mode=soft")
    whole = train(tiny(data_dir, tmp_path / "whole", "optim.steps=12", *extra))
    parts = tmp_path / "parts"
    train(tiny(data_dir, parts, "optim.steps=8", *extra))  # stops after step 8
    shutil.rmtree(parts / "cache")  # the resumed half extracts again: features must be identical too
    train(tiny(data_dir, parts, "optim.steps=12", *extra))
    a = torch.load(whole / CHECKPOINT, weights_only=True)
    b = torch.load(parts / CHECKPOINT, weights_only=True)
    assert a["step"] == b["step"] == 12
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert a["scheduler"] == b["scheduler"] and a["best"] == b["best"]
    rows_a = {r["step"]: r["loss"] for r in train_rows(whole)}
    rows_b = {r["step"]: r["loss"] for r in train_rows(parts)}  # + step 8, where the first part ended
    assert set(rows_b) == {5, 8, 10, 12} and set(rows_a) == {5, 10, 12}
    assert rows_a[5] == rows_b[5] and rows_a[12] == rows_b[12]  # the same windows of steps


def test_resuming_with_another_config_is_refused(data_dir, tmp_path):
    train(tiny(data_dir, tmp_path / "run", "optim.steps=4"))
    before = (tmp_path / "run" / CHECKPOINT).read_bytes()
    with pytest.raises(ValueError, match="another config"):
        train(tiny(data_dir, tmp_path / "run", "optim.steps=8", "optim.lr=1e-2"))
    assert (tmp_path / "run" / CHECKPOINT).read_bytes() == before


def test_a_fine_tuned_checkpoint_loads_into_lightglue_and_still_stops_early(data_dir, tmp_path):
    conf = load_config(None, [
        f"data.images=[{data_dir / LAPAROSCOPIC}]", "data.train_pairs=4", "data.val_pairs=2", "data.val_fraction=0",
        "features.max_keypoints=256", "model.weights=aliked_lightglue", "optim.steps=4", "optim.batch_size=1",
        "optim.lr=1e-5", "optim.warmup_steps=1", f"run.output={tmp_path / 'run'}", "run.checkpoint_every=2",
        "run.val_every=2", "run.progress=false", "run.tensorboard=false"])
    output = train(conf)
    state = torch.load(output / CHECKPOINT, weights_only=True)
    official = LightGlue(features="aliked").state_dict()
    assert set(state["model"]) == set(official)  # the official key layout
    assert any(not torch.equal(state["model"][k], official[k]) for k in official)  # it did train

    image = load_image(data_dir / LAPAROSCOPIC / sorted(os.listdir(data_dir / LAPAROSCOPIC))[0])
    image = image.astype(np.float32) / 255.0
    H = sample_homography(image.shape[0], image.shape[1], rng=np.random.default_rng(3), max_angle_deg=3,
                          scale_range=(0.95, 1.05), perspective=0.01, translation=0.02)
    extractor = build_extractor("aliked", max_num_keypoints=512, detection_threshold=0.0)
    views = [extractor.extract(torch.from_numpy(im).permute(2, 0, 1)) for im in (image, warp_image(image, H))]
    data = {"image0": views[0], "image1": views[1]}
    config = tmp_path / "run.yaml"
    config.write_text(dump_config(conf))
    shipped = tmp_path / "shipped" / "weights.pth"
    assert cli_main(["train", str(config), "--export", str(shipped)]) == 0
    half = torch.load(shipped, weights_only=True)
    assert {v.dtype for v in half.values()} == {torch.float16}
    assert shipped.stat().st_size < 0.55 * (output / BEST).stat().st_size
    matches = {}
    for path in (output / CHECKPOINT, output / BEST, shipped):
        model = LightGlue(features="aliked", weights=path).eval()
        with torch.inference_mode():
            out = model(data)
        assert out["stop"] < model.conf.n_layers, path  # early stopping still works
        assert len(out["matches"][0]) > 100
        matches[path] = out["matches"][0]
    # the fp16 export matches as the fp32 weights do
    same = (matches[shipped][:, None] == matches[output / BEST][None]).all(-1).any(1).float().mean()
    assert same > 0.98
    # run.export_blend: the export is that share of the trained weights, the rest the start weights
    moved = tmp_path / "moved"
    moved.mkdir()
    torch.save({k: v + 1.0 if v.is_floating_point() else v for k, v in official.items()}, moved / BEST)
    blended = export_weights(dataclasses.replace(conf, run=dataclasses.replace(conf.run, output=str(moved),
                                                                               export_blend=0.25)),
                             tmp_path / "shipped" / "blend.pth")
    mixed = torch.load(blended, weights_only=True)
    for key, value in official.items():
        if value.is_floating_point() and key != "confidence_thresholds":
            assert torch.allclose(mixed[key].float(), value + 0.25, rtol=1e-3, atol=1e-3), key


def test_two_processes_under_torchrun_train_and_write_a_loadable_checkpoint(data_dir, tmp_path):
    config = tmp_path / "ddp.yaml"
    conf = tiny(data_dir, tmp_path / "run", "optim.steps=6")
    from specglue.train.config import dump_config

    config.write_text(dump_config(conf))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
         "specglue.cli", "train", str(config)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert state["world_size"] == 2 and state["step"] == 6
    model = LightGlue(features=None, input_dim=128, descriptor_dim=64, num_heads=2, n_layers=2,
                      weights=tmp_path / "run" / CHECKPOINT)
    assert torch.equal(model.state_dict()["log_assignment.1.matchability.weight"],
                       state["model"]["log_assignment.1.matchability.weight"])
    assert len(list((tmp_path / "run" / "cache").glob("train-rank*.h5"))) == 2  # each process its own shard
    rows = train_rows(tmp_path / "run")
    assert [r["step"] for r in rows] == [5, 6]


def test_the_cli_prints_the_resolved_config_and_names_bad_keys(data_dir, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("optim: {steps: 3}\n")
    assert cli_main(["train", str(config), "optim.lr=2e-4", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "steps: 3" in printed and "lr: 0.0002" in printed
    assert cli_main(["train", str(config), "optim.rate=1"]) == 1
    assert "optim.rate" in capsys.readouterr().err
    assert cli_main(["train", str(config), f"data.images=[{tmp_path / 'missing'}]"]) == 1
    assert "missing" in capsys.readouterr().err
    never = f"run.output={tmp_path / 'never'}"
    assert cli_main(["train", str(config), never, "--export", str(tmp_path / "w.pth")]) == 1
    assert "model_best.pt does not exist: train the run first" in capsys.readouterr().err
    assert not (tmp_path / "w.pth").exists()


def write_plane_scene(folder: Path, photo: Path) -> None:
    """Two views of a textured plane z = 4 (camera 0 frame) with exact depth maps."""
    (folder / "images").mkdir(parents=True)
    width, height = 160, 120
    rgb = cv2.resize(load_image(photo), (width, height), interpolation=cv2.INTER_AREA)
    K = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]])
    angle = np.deg2rad(6)
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    t = np.array([-0.2, 0.05, 0.1])
    H = K @ (R + np.outer(t, [0, 0, 1]) / 4.0) @ np.linalg.inv(K)
    warped = (warp_image(rgb.astype(np.float32) / 255.0, H) * 255).round().astype(np.uint8)
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    back = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T @ R
    depth1 = (4.0 + (R.T @ t)[2]) / back[..., 2]
    depth1[(warp_image(np.ones((height, width), np.float32), H) < 0.5)] = 0  # nothing seen there
    T1 = np.eye(4)
    T1[:3, :3], T1[:3, 3] = R, t
    images = {}
    for name, image, depth, T in (("a", rgb, np.full((height, width), 4.0), np.eye(4)), ("b", warped, depth1, T1)):
        cv2.imwrite(str(folder / "images" / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        np.save(folder / "images" / f"{name}.npy", depth.astype(np.float32))
        images[name] = {"image": f"images/{name}.png", "depth": f"images/{name}.npy", "K": K.tolist(),
                        "T_cam_from_world": T.tolist()}
    import json

    (folder / "scene.json").write_text(json.dumps({"images": images, "pairs": [["a", "b"], ["b", "a"]]}))
    return H


def test_depth_pairs_give_the_plane_homography_labels_and_train(data_dir, tmp_path):
    from specglue.geometry import gt_matches_batch_from_homography
    from specglue.train.batches import BatchBuilder
    from specglue.train.data import DepthDataConf, DepthPairs

    photo = data_dir / LAPAROSCOPIC / sorted(os.listdir(data_dir / LAPAROSCOPIC))[0]
    H = write_plane_scene(tmp_path / "scene", photo)
    dataset = DepthPairs.from_scenes([tmp_path / "scene"], DepthDataConf(resize=0, photometric=False,
                                                                         specular_probability=0.0))
    item = dataset[0]
    assert item["depth0"].shape == (120, 160) and item["T_0to1"].shape == (4, 4)
    builder = BatchBuilder(dataset, "aliked", {"max_num_keypoints": 128, "detection_threshold": 0.0, "resize": None},
                           labels={"depth": {"positive_px": 3.0, "negative_px": 5.0}})
    entry = builder.entry(0)
    v0, v1 = entry["views"]
    by_h = gt_matches_batch_from_homography(v0["keypoints"], v1["keypoints"], torch.from_numpy(H)[None],
                                            v0["image_size"], v1["image_size"], positive_px=3, negative_px=5)
    positives = by_h["matches0"][0] >= 0
    assert positives.sum() > 30
    assert torch.equal(entry["matches0"][positives], by_h["matches0"][0][positives])
    agree = float((entry["matches0"] == by_h["matches0"][0]).float().mean())
    assert agree > 0.95  # the rest differs only where the rendered border has no depth

    conf = load_config(None, [f"data.scenes=[{tmp_path / 'scene'}]", "data.kind=depth", "data.train_pairs=2",
                              "data.val_pairs=1", "data.val_fraction=0", "data.depth.resize=0",
                              "features.max_keypoints=128", "model.weights=null", "model.n_layers=2",
                              "model.descriptor_dim=64", "model.num_heads=2", "optim.steps=3", "optim.batch_size=2",
                              f"run.output={tmp_path / 'run'}", "run.progress=false", "run.tensorboard=false"])
    output = train(conf)
    assert torch.load(output / CHECKPOINT, weights_only=True)["step"] == 3


def test_a_mixed_run_trains_on_homographies_and_sinus_tracks(data_dir, tmp_path):
    """data.kind mixed: items of both kinds in one run, each labelled by its own ground truth."""
    from specglue.train.loop import build_batches, build_datasets

    sinus = data_dir / "13_sinus_endoscopy_sfm_poses"
    conf = load_config(None, ["data.kind=mixed", f"data.images=[{sinus / '00004584.jpg'}]", f"data.scenes=[{sinus}]",
                              "data.depth.sfm_frames=[00004584.jpg, 00004587.jpg]", "data.depth.resize=320",
                              "data.train_pairs=4", "data.val_pairs=1", "data.val_fraction=0",
                              "features.max_keypoints=128", "model.weights=null", "model.n_layers=2",
                              "model.descriptor_dim=64", "model.num_heads=2", "optim.steps=2", "optim.batch_size=2",
                              f"run.output={tmp_path / 'run'}", "run.progress=false", "run.tensorboard=false"])
    train_set, _ = build_datasets(conf)
    kinds = {train_set.is_depth(i) for i in range(4)}
    assert kinds == {True, False}
    builder = build_batches(conf, train_set, "train", 0)
    for index in range(4):
        labels = builder.entry(index)["matches0"]
        assert int((labels >= 0).sum()) > 10  # both kinds give positives
    builder.close()
    output = train(conf)
    assert torch.load(output / CHECKPOINT, weights_only=True)["step"] == 2


def test_bad_scene_files_are_named(tmp_path):
    from specglue.train.data import DepthPairs

    with pytest.raises(FileNotFoundError, match="scene.json"):
        DepthPairs.read_scene(tmp_path)
    (tmp_path / "scene.json").write_text('{"images": {"a": {"image": "a.png"}}, "pairs": []}')
    with pytest.raises(ValueError, match=r"image 'a' lacks"):
        DepthPairs.read_scene(tmp_path)


def test_a_resumed_run_keeps_the_rows_logged_under_old_column_names(tmp_path):
    from specglue.train.loop import MetricsLog

    (tmp_path / "metrics.csv").write_text("step,split,lr,loss,precision,recall\n0,val,,3.0,0.6,0.4\n"
                                          "10,train,1e-05,2.0,0.7,0.5\n20,train,1e-05,1.5,0.8,0.6\n")
    MetricsLog(tmp_path, resume_step=10, tensorboard=False).close()
    rows = list(iter_metrics(tmp_path / "metrics.csv"))
    assert [(r["step"], r["label_precision"], r["label_recall"]) for r in rows] == [(0, 0.6, 0.4), (10, 0.7, 0.5)]
