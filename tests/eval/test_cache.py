"""The evaluation's caches: crash-safe parts, the fingerprint guard, the shared per-image layout."""

import h5py
import numpy as np
import pytest

from specglue.eval.cache import PairFeatures, PairFeaturesFile, Prediction, PredictionsFile
from specglue.eval.methods.base import Method
from specglue.eval.runner import export_predictions
from specglue.storage import ImageFeatures


def image(n: int, seed: int, mask: bool = True) -> ImageFeatures:
    rng = np.random.default_rng(seed)
    return ImageFeatures(keypoints=rng.uniform(0, 60, (n, 2)).astype(np.float32),
                         descriptors=rng.normal(size=(n, 8)).astype(np.float32),
                         scores=rng.uniform(size=n).astype(np.float32), image_size=np.array([64, 48], np.float32),
                         mask=rng.uniform(size=(48, 64)) > 0.9 if mask else None)


def pairs(count: int):
    return [PairFeatures(f"p{k}", image(5 + k, 2 * k), image(6, 2 * k + 1), {"H_0to1": np.eye(3) * (k + 1)},
                         {"k": k}, {"rot90": ImageFeatures(**{**vars(image(4, 99, mask=False)),
                                                            "to_image1": np.eye(3)[::-1].copy()})})
            for k in range(count)]


class DiesOnThirdPair(Method):
    name = "dies"

    def __init__(self) -> None:
        self.calls = 0

    def match(self, pair: PairFeatures) -> Prediction:
        self.calls += 1
        if self.calls == 4:  # the warm-up call, then two pairs
            raise KeyboardInterrupt
        return Prediction(np.array([[0, 1]]), np.array([0.5], np.float32))


def test_pairs_round_trip_with_masks_views_and_ground_truth(tmp_path):
    written = pairs(3)
    cache = PairFeaturesFile(tmp_path / "features.h5", {"seed": 0}).open()
    cache.write_many(written)
    cache.commit()
    assert cache.names() == ["p0", "p1", "p2"] and cache.views()["p1"] == ("rot90",)
    for pair in written:
        back = PairFeaturesFile(tmp_path / "features.h5").read(pair.name)
        for a, b in ((pair.image0, back.image0), (pair.image1, back.image1), (pair.views["rot90"], back.views["rot90"])):
            for key in ("keypoints", "descriptors", "scores", "image_size", "mask", "to_image1"):
                np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        np.testing.assert_array_equal(back.gt["H_0to1"], pair.gt["H_0to1"])
        assert back.info == pair.info
    # the images are stored in hloc's per-image layout (descriptors transposed)
    with h5py.File(tmp_path / "features.h5") as f:
        assert f["p2/image0/descriptors"].shape == (8, 7)


def test_a_killed_export_keeps_its_finished_pairs(tmp_path):
    features = PairFeaturesFile(tmp_path / "features.h5", {"seed": 0}).open()
    features.write_many(pairs(4))
    features.commit()
    with pytest.raises(KeyboardInterrupt):
        export_predictions(features, [DiesOnThirdPair()], tmp_path / "predictions", {"seed": 0}, flush_every=1)
    predictions = PredictionsFile(tmp_path / "predictions" / "dies.h5", {"seed": 0})
    assert predictions.names() == []  # nothing merged yet: the two finished pairs are in parts
    assert len(predictions.journal.parts()) == 2
    assert predictions.open().names() == ["p0", "p1"]  # a rerun folds them in and does the rest


def test_other_settings_and_unknown_files_are_refused(tmp_path):
    PairFeaturesFile(tmp_path / "features.h5", {"seed": 0, "resize": 640}).open().write_many(pairs(1))
    with pytest.raises(ValueError, match=r"other settings \(resize: 640 -> 320; seed: 0 -> 1\)"):
        PairFeaturesFile(tmp_path / "features.h5", {"seed": 1, "resize": 320}).open()
    assert PairFeaturesFile(tmp_path / "features.h5", {"seed": 1}).open(overwrite=True).names() == []
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.create_group("p0")
    with pytest.raises(ValueError, match="records no settings"):
        PairFeaturesFile(tmp_path / "old.h5", {"seed": 0}).open()
