"""Seconds per training iteration of aLRP Loss RetinaNet against mmdet's Focal Loss RetinaNet.

Both detectors are built from mmdet's ``retinanet_r50_fpn_1x_coco.py`` (ResNet-50 FPN, no
pretrained weights), the aLRP one with :class:`aLRPRetinaHead` swapped in. Each iteration is a
full ``train_step`` (data preprocessing, forward, loss, backward and an SGD step) on the same
random images with a few random boxes. The two models alternate iteration by iteration in the same
process after one warm-up iteration each.

    python tools/benchmark_train.py                 # 512 x 512, batch 2 on CPU (8 on GPU)
    python tools/benchmark_train.py --iters 3 --size 320
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmengine.utils import get_installed_path

import mmdet_alrp  # noqa: F401  (registers the aLRP modules)
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

#: mmdet's RetinaNet config, shipped in the mmdet package (``mmdet::retinanet/...`` in configs).
BASE_CONFIG = osp.join(get_installed_path('mmdet'), '.mim', 'configs', 'retinanet',
                       'retinanet_r50_fpn_1x_coco.py')


def build_models(device: str) -> Dict[str, torch.nn.Module]:
    """The Focal Loss RetinaNet of mmdet's config and the same detector with aLRP Loss."""
    cfg = Config.fromfile(BASE_CONFIG)
    cfg.model.backbone.init_cfg = None
    focal, alrp = cfg.model, copy.deepcopy(cfg.model)
    alrp.bbox_head.pop('loss_bbox')
    alrp.bbox_head.type = 'aLRPRetinaHead'
    alrp.bbox_head.loss_cls = dict(type='aLRPLoss')
    return {name: MODELS.build(model_cfg).to(device).train()
            for name, model_cfg in (('Focal Loss RetinaNet', focal),
                                    ('aLRP Loss RetinaNet', alrp))}


def make_batch(batch: int, size: int, num_classes: int, seed: int = 0) -> dict:
    """Random uint8 images with 1 to 4 random boxes each, as the data loader gives them."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8))
        num = int(torch.randint(1, 5, (1, ), generator=gen))
        xy = torch.rand(num, 2, generator=gen) * size * 0.7
        wh = (torch.rand(num, 2, generator=gen) * 0.6 + 0.05) * size
        boxes = torch.cat([xy, (xy + wh).clamp(max=size - 1)], 1)
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.randint(0, num_classes, (num, ), generator=gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def time_step(model: torch.nn.Module, data: dict, optim: OptimWrapper, device: str) -> float:
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.train_step(data, optim)
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=512, help='image side in pixels')
    parser.add_argument('--batch', type=int, default=None,
                        help='images per iteration (default 2 on CPU, 8 on GPU)')
    parser.add_argument('--iters', type=int, default=10, help='timed iterations per model')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.size < 64:
        parser.error('--iters must be >= 1 and --size >= 64')
    batch = args.batch or (8 if args.device == 'cuda' else 2)

    init_default_scope('mmdet')
    torch.manual_seed(0)
    models = build_models(args.device)
    data = make_batch(batch, args.size, models['aLRP Loss RetinaNet'].bbox_head.num_classes)
    optims = {name: OptimWrapper(torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9,
                                                 weight_decay=1e-4))
              for name, m in models.items()}
    times: Dict[str, List[float]] = {name: [] for name in models}
    for name, model in models.items():  # warm-up
        time_step(model, data, optims[name], args.device)
    for _ in range(args.iters):
        for name, model in models.items():
            times[name].append(time_step(model, data, optims[name], args.device))

    device = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'CPU, {torch.get_num_threads()} threads'
    print(f'{args.size} x {args.size}, batch {batch}, {args.iters} timed iterations, {device}')
    head = f"{'model':22} {'mean s/iter':>11} {'median':>8} {'min':>8}"
    print(head)
    print('-' * len(head))
    for name, values in times.items():
        print(f'{name:22} {statistics.mean(values):>11.3f} {statistics.median(values):>8.3f} '
              f'{min(values):>8.3f}')
    names = list(times)
    ratio = statistics.mean(times[names[1]]) / statistics.mean(times[names[0]])
    print(f'\nratio aLRP / Focal (mean s/iter): {ratio:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
