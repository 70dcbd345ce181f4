"""specglue.train.batches: the item order of each step and labels of masked keypoints."""

import torch

from specglue.geometry import IGNORE, UNMATCHED
from specglue.train.batches import ItemOrder, TrainingCache, unmatch_masked


def test_each_process_gets_its_own_shard_and_every_epoch_covers_it():
    orders = [ItemOrder(20, batch_size=5, seed=3, rank=r, world=2) for r in (0, 1)]
    epoch = [sorted(o.indices(0) + o.indices(1)) for o in orders]  # 10 items per shard = 2 steps
    assert epoch[0] == list(range(0, 20, 2)) and epoch[1] == list(range(1, 20, 2))
    first, second = orders[0].indices(0) + orders[0].indices(1), orders[0].indices(2) + orders[0].indices(3)
    assert sorted(second) == sorted(first) and second != first  # reshuffled next epoch
    again = ItemOrder(20, batch_size=5, seed=3, rank=0, world=2)
    assert [again.indices(s) for s in (3, 0, 2)] == [orders[0].indices(s) for s in (3, 0, 2)]  # any order, same items


def test_masked_keypoints_and_their_partners_become_unmatched():
    matches0 = torch.tensor([[1, 0, UNMATCHED, IGNORE]])
    matches1 = torch.tensor([[1, 0, IGNORE]])
    masked0 = torch.tensor([[True, False, False, False]])
    masked1 = torch.tensor([[False, False, True]])
    m0, m1 = unmatch_masked(matches0, matches1, masked0, masked1)
    assert m0.tolist() == [[UNMATCHED, 0, UNMATCHED, IGNORE]]
    assert m1.tolist() == [[1, UNMATCHED, UNMATCHED]]  # the partner of a masked point, and a masked point


def cache_entry(n: int):
    view = {"keypoints": torch.rand(n, 2), "descriptors": torch.rand(n, 4), "keypoint_scores": torch.rand(n),
            "keypoint_specular": torch.rand(n), "covered": torch.rand(n) > 0.5, "image_size": torch.tensor([[8.0, 6.0]])}
    return {"views": [view, view], "matches0": torch.arange(n), "matches1": torch.arange(n)}


def test_training_cache_keeps_entries_of_its_settings_only(tmp_path):
    entry = cache_entry(5)
    cache = TrainingCache(tmp_path, "train", {"extractor": "aliked", "max_keypoints": 512})
    cache.put(3, entry)
    cache.close()
    cache = TrainingCache(tmp_path, "train", {"extractor": "aliked", "max_keypoints": 512})
    got = cache.get(3)
    assert cache.get(4) is None
    torch.testing.assert_close(got["views"][1]["descriptors"], entry["views"][1]["descriptors"])
    assert torch.equal(got["matches0"], entry["matches0"])
    cache.close()
    cache = TrainingCache(tmp_path, "train", {"extractor": "aliked", "max_keypoints": 1024})
    assert cache.get(3) is None  # other settings: started again
    cache.close()
    (tmp_path / "train.h5").write_bytes(b"not hdf5")
    cache = TrainingCache(tmp_path, "train", {"extractor": "aliked"})  # unreadable: started again
    cache.put(0, entry)
    assert cache.get(0) is not None
    cache.close()
