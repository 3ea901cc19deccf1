"""The one-hot labels of the ranking heads, by hand."""

import torch

from mmdet_alrp.models.utils import ranking_labels


def test_ranking_labels_by_hand():
    # 3 classes (3 = background): a positive of class 2, a negative, an ignored prior, a
    # positive of class 0.
    labels = torch.tensor([2, 3, 3, 0])
    out = ranking_labels(labels, torch.tensor([0, 3]), 3, torch.tensor([False, False, True, False]))
    assert out.dtype == torch.int8
    assert out.tolist() == [[0, 0, 1], [0, 0, 0], [-1, -1, -1], [1, 0, 0]]
    assert ranking_labels(labels[1:3], torch.zeros(0, dtype=torch.long), 3).tolist() == [
        [0, 0, 0],
        [0, 0, 0],
    ]
