"""The CPU stand-in of CARAFE's reassembly (tests/carafe_on_cpu.py) on hand-computed cases, and
against mmcv's CUDA kernel where there is a GPU."""

import pytest
import torch

from tests.carafe_on_cpu import carafe_reference


def test_carafe_reference_by_hand():
    """A hand-computed case: one channel, kernel 3, scale 2, all weight on one neighbour."""
    features = torch.arange(1.0, 5.0).view(1, 1, 2, 2)  # [[1, 2], [3, 4]]
    masks = torch.zeros(1, 9, 4, 4)
    masks[:, 5] = 1.0  # neighbour (0, +1): right of the source location, 0 beyond the border
    out = carafe_reference(features, masks, 3, 1, 2)
    expected = torch.tensor([[2.0, 2, 0, 0], [2, 2, 0, 0], [4, 4, 0, 0], [4, 4, 0, 0]])
    torch.testing.assert_close(out[0, 0], expected)
    masks = torch.full((1, 9, 4, 4), 1 / 9)  # the mean of the 3 x 3 neighbourhood
    out = carafe_reference(features, masks, 3, 1, 2)
    torch.testing.assert_close(out[0, 0, 0, 0], torch.tensor(10 / 9))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mmcv's carafe kernel needs CUDA")
def test_carafe_reference_matches_mmcv_on_cuda():
    from mmcv.ops import carafe

    gen = torch.Generator().manual_seed(0)
    features = torch.randn(2, 8, 5, 7, generator=gen)
    masks = torch.randn(2, 2 * 25, 10, 14, generator=gen).view(2, 2, 25, 10, 14).softmax(2)
    masks = masks.view(2, 50, 10, 14)
    expected = carafe(features.cuda(), masks.cuda(), 5, 2, 2).cpu()
    torch.testing.assert_close(carafe_reference(features, masks, 5, 2, 2), expected)
