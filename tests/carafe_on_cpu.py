"""CARAFE's reassembly on CPU for the tests: mmcv 2.1 implements the ``carafe`` op for CUDA
(and NPU / MLU) only, so a model with the CARAFE FPN (FPN_CARAFE) cannot run a step on a CPU.
The fixture :func:`carafe_on_cpu` runs CPU tensors through :func:`carafe_reference`, written
from the CARAFE paper (Wang et al., ICCV 2019): each output location is the weighted sum of the
k x k neighbourhood (zero padded) of its source location, weights from the mask channels of its
group. CUDA tensors still go to mmcv's kernel. It stands in for the op so that the rest of the
detector (heads, losses, prediction) runs; it is not a test of CARAFE.
"""

import importlib

import pytest
import torch.nn.functional as F
from torch import Tensor


def carafe_reference(
    features: Tensor, masks: Tensor, kernel_size: int, group_size: int, scale_factor: int
) -> Tensor:
    """CARAFE's reassembly of ``features`` (N, C, H, W) by ``masks`` (N, G k k, sH, sW), each
    group's k x k weights normalised by the caller; returns (N, C, sH, sW)."""
    n, channels, height, width = features.shape
    k, groups, scale = kernel_size, group_size, scale_factor
    # the k x k neighbourhood of each source location, channel-major: (N, G, C / G, k k, H, W)
    patches = F.unfold(features, k, padding=(k - 1) // 2).view(
        n, groups, channels // groups, k * k, height, width
    )
    # output location (i, j) reads the neighbourhood of source location (i // s, j // s)
    patches = patches.repeat_interleave(scale, dim=4).repeat_interleave(scale, dim=5)
    weights = masks.view(n, groups, 1, k * k, height * scale, width * scale)
    return (patches * weights).sum(3).view(n, channels, height * scale, width * scale)


@pytest.fixture
def carafe_on_cpu(monkeypatch):
    """mmcv's CARAFEPack reassembles CPU tensors with :func:`carafe_reference`."""
    carafe_module = importlib.import_module('mmcv.ops.carafe')  # not the function mmcv.ops.carafe
    cuda_carafe = carafe_module.carafe

    def carafe(features, masks, kernel_size, group_size, scale_factor):
        if features.is_cuda:
            return cuda_carafe(features, masks, kernel_size, group_size, scale_factor)
        return carafe_reference(features, masks, kernel_size, group_size, scale_factor)

    monkeypatch.setattr(carafe_module, 'carafe', carafe)
