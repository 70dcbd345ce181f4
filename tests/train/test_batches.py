"""specglue.train.batches: the item order of each step and labels of masked keypoints."""

import torch

from specglue.geometry import IGNORE, UNMATCHED
from specglue.train.batches import ItemOrder, unmatch_masked


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
