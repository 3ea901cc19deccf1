"""ChannelsLastDetDataPreprocessor: DetDataPreprocessor's batch, stored channels last."""
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData
from torch import nn

from mmdet_alrp.models import ChannelsLastDetDataPreprocessor

ARGS = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
            pad_size_divisor=32)


def loader_batch(shapes):
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for h, w in shapes:
        inputs.append(torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[1., 2., 20., 30.]]),
                                           labels=torch.tensor([0]))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_same_batch_as_mmdet_stored_channels_last():
    shapes = [(50, 70), (64, 40)]  # padded to 64 x 96
    ours = ChannelsLastDetDataPreprocessor(**ARGS)(loader_batch(shapes), True)
    ref = DetDataPreprocessor(**ARGS)(loader_batch(shapes), True)
    inputs = ours['inputs']
    assert inputs.shape == ref['inputs'].shape == (2, 3, 64, 96)
    assert torch.equal(inputs, ref['inputs'])
    assert inputs.is_contiguous(memory_format=torch.channels_last)
    assert not inputs.is_contiguous()
    assert inputs.stride() == (64 * 96 * 3, 1, 96 * 3, 3)
    for a, b in zip(ours['data_samples'], ref['data_samples']):
        assert a.batch_input_shape == b.batch_input_shape == (64, 96)
        assert a.pad_shape == b.pad_shape
        assert torch.equal(a.gt_instances.bboxes, b.gt_instances.bboxes)


def test_network_outputs_do_not_depend_on_the_order():
    """A conv / GroupNorm / upsampling stack gives the NCHW batch's outputs and gradients."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8),
                        nn.Upsample(scale_factor=2), nn.Conv2d(8, 5, 1))
    batch = loader_batch([(32, 32), (32, 32)])
    outputs, grads = [], []
    for preprocessor in (DetDataPreprocessor(**ARGS), ChannelsLastDetDataPreprocessor(**ARGS)):
        net.zero_grad()
        out = net(preprocessor(batch, True)['inputs'])
        out.square().sum().backward()
        outputs.append(out.contiguous())
        grads.append(net[0].weight.grad.clone())
    assert torch.allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-3)
