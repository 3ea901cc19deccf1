"""Seconds per training iteration of a ranking-loss detector against mmdet's own on the same input.

Two comparisons (``--model``): ``alrp-retinanet``, aLRP Loss RetinaNet against Focal Loss
RetinaNet, both from mmdet's ``retinanet_r50_fpn_1x_coco.py`` (the aLRP one with
:class:`aLRPRetinaHead` and aLRP Loss swapped in); ``rs-atss``, RS-ATSS
(``configs/rank_sort_loss/rank-sort-loss_atss_r50_fpn_4xb4-1x_coco.py``: RankingATSSHead with
Rank & Sort Loss, no centerness) against mmdet's ATSS (``atss_r50_fpn_1x_coco.py``: Focal Loss,
GIoU Loss and centerness). ResNet-50 FPN, 80 classes, no pretrained weights. Each iteration is a
full ``train_step`` (data preprocessing, forward, targets, loss, backward and an SGD step) on the
same random images with a few random boxes each. For every case the two models alternate
iteration by iteration in the same process, after warm-up iterations of each.

    python tools/analysis_tools/benchmark_train.py                # CPU: batch 2 at 512 x 512
    python tools/analysis_tools/benchmark_train.py --device cuda  # batch 8 at 512, 4 at 800 x 1333
    python tools/analysis_tools/benchmark_train.py --model rs-atss --case 1x256x256 --iters 5

Prints per case the median, mean and min seconds per iteration of each model, the ratio ours /
mmdet's of the medians and, on CUDA, each model's allocator peak, with the PASS / FAIL of the
target ratio where the issue sets one (ours at most 1.05 times mmdet's: aLRP Loss RetinaNet on
a GPU, RS-ATSS on the CPU and on a GPU).
"""

import argparse
import copy
import os.path as osp
import statistics
import time
from typing import Dict, List, NamedTuple, Tuple

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmengine.utils import get_installed_path

import mmdet_alrp  # noqa: F401  (registers the aLRP modules)
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

#: mmdet's configs, shipped in the mmdet package (``mmdet::retinanet/...`` in configs).
MMDET_CONFIGS = osp.join(get_installed_path('mmdet'), '.mim', 'configs')
BASE_CONFIG = osp.join(MMDET_CONFIGS, 'retinanet', 'retinanet_r50_fpn_1x_coco.py')
ATSS_CONFIG = osp.join(MMDET_CONFIGS, 'atss', 'atss_r50_fpn_1x_coco.py')
RS_ATSS_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
    'configs',
    'rank_sort_loss',
    'rank-sort-loss_atss_r50_fpn_4xb4-1x_coco.py',
)
FOCAL, ALRP = 'Focal Loss RetinaNet', 'aLRP Loss RetinaNet'
ATSS, RS_ATSS = 'ATSS', 'RS-ATSS'
#: The cases of the issue: (batch, height, width) per device.
DEFAULT_CASES = {'cpu': [(2, 512, 512)], 'cuda': [(8, 512, 512), (4, 800, 1333)]}
#: The target: our detector's iteration / mmdet's, at most.
TARGET_RATIO = 1.05


class Comparison(NamedTuple):
    """One ``--model``: mmdet's detector and ours (names as printed), the ratio's label, and
    the devices on which the issue sets the target ratio."""

    baseline: str
    ours: str
    label: str
    target_devices: Tuple[str, ...]


COMPARISONS = {
    'alrp-retinanet': Comparison(FOCAL, ALRP, 'aLRP / Focal', ('cuda',)),
    'rs-atss': Comparison(ATSS, RS_ATSS, 'RS-ATSS / ATSS', ('cpu', 'cuda')),
}

Case = Tuple[int, int, int]


def parse_case(text: str) -> Case:
    """``'BATCHxHEIGHTxWIDTH'`` -> (batch, height, width)."""
    parts = text.lower().split('x')
    try:
        batch, height, width = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'a case is BATCHxHEIGHTxWIDTH (e.g. 2x512x512), got {text!r}'
        ) from None
    if batch < 1 or min(height, width) < 64:
        raise argparse.ArgumentTypeError(
            f'a case needs a batch >= 1 and sides >= 64 px, got {text!r}'
        )
    return batch, height, width


def model_configs(model: str) -> Tuple[Config, Config]:
    """The model configs of mmdet's detector and ours for ``--model`` (no pretrained weights)."""
    if model == 'alrp-retinanet':
        baseline = Config.fromfile(BASE_CONFIG).model
        ours = copy.deepcopy(baseline)
        ours.bbox_head.pop('loss_bbox')
        ours.bbox_head.type = 'aLRPRetinaHead'
        ours.bbox_head.loss_cls = dict(type='aLRPLoss')
    else:
        baseline = Config.fromfile(ATSS_CONFIG).model
        ours = Config.fromfile(RS_ATSS_CONFIG).model
    for cfg in (baseline, ours):
        cfg.backbone.init_cfg = None
    return baseline, ours


def build_models(device: str, model: str = 'alrp-retinanet') -> Dict[str, torch.nn.Module]:
    """mmdet's detector and ours of ``--model`` ('alrp-retinanet': mmdet's Focal Loss RetinaNet
    and the same detector with aLRP Loss; 'rs-atss': mmdet's ATSS and RS-ATSS), in that
    order."""
    names = COMPARISONS[model]
    return {
        name: MODELS.build(cfg).to(device).train()
        for name, cfg in zip((names.baseline, names.ours), model_configs(model))
    }


def make_batch(batch: int, height: int, width: int, num_classes: int, seed: int = 0) -> dict:
    """Random uint8 images with 1 to 4 random boxes each, as the data loader gives them."""
    gen = torch.Generator().manual_seed(seed)
    size = torch.tensor([width, height], dtype=torch.float32)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8))
        num = int(torch.randint(1, 5, (1,), generator=gen))
        xy = torch.rand(num, 2, generator=gen) * size * 0.7
        wh = (torch.rand(num, 2, generator=gen) * 0.6 + 0.05) * size
        boxes = torch.cat([xy, torch.minimum(xy + wh, size - 1)], 1)
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(height, width), ori_shape=(height, width), scale_factor=(1.0, 1.0)
            )
        )
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.randint(0, num_classes, (num,), generator=gen)
        )
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def make_optim(model: torch.nn.Module) -> OptimWrapper:
    return OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)
    )


def time_step(model: torch.nn.Module, data: dict, optim: OptimWrapper, device: str) -> float:
    """Seconds of one ``train_step``, the device's queue drained before and after."""
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.train_step(data, optim)
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run_case(
    models: Dict[str, torch.nn.Module], case: Case, iters: int, warmup: int, device: str
) -> dict:
    """Times both models (mmdet's first, ours second) on one batch; returns ``times`` (seconds
    per iteration, by model), ``ratio`` (ours / mmdet's of the medians) and, on CUDA,
    ``peak_mib`` (allocator peak of a training iteration, by model)."""
    batch, height, width = case
    baseline, ours = models
    data = make_batch(batch, height, width, models[ours].bbox_head.num_classes)
    optims = {name: make_optim(model) for name, model in models.items()}
    peak_mib = {}
    for name, model in models.items():
        if device == 'cuda':
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(max(warmup, 1 if device == 'cuda' else 0)):
            time_step(model, data, optims[name], device)
        if device == 'cuda':
            peak_mib[name] = torch.cuda.max_memory_allocated() / 2**20
    times: Dict[str, List[float]] = {name: [] for name in models}
    for _ in range(iters):
        for name, model in models.items():
            times[name].append(time_step(model, data, optims[name], device))
    result = dict(
        case=case,
        times=times,
        ratio=statistics.median(times[ours]) / statistics.median(times[baseline]),
    )
    if device == 'cuda':
        result['peak_mib'] = peak_mib
    return result


def print_report(
    results: List[dict], device: str, iters: int, names: Comparison = COMPARISONS['alrp-retinanet']
) -> None:
    where = (
        torch.cuda.get_device_name()
        if device == 'cuda'
        else f'CPU, {torch.get_num_threads()} threads'
    )
    print(
        f'torch {torch.__version__}, {where}, {iters} timed iterations per model and case '
        '(alternating)'
    )
    head = f'{"case":>18} {"model":22} {"median s":>9} {"mean s":>8} {"min s":>8}' + (
        f' {"peak MiB":>9}' if device == 'cuda' else ''
    )
    print(head)
    print('-' * len(head))
    for result in results:
        batch, height, width = result['case']
        label = f'{batch} x {height} x {width}'
        for name, values in result['times'].items():
            line = (
                f'{label:>18} {name:22} {statistics.median(values):>9.3f} '
                f'{statistics.mean(values):>8.3f} {min(values):>8.3f}'
            )
            if device == 'cuda':
                line += f' {result["peak_mib"][name]:>9.0f}'
            print(line)
            label = ''
    print()
    for result in results:
        batch, height, width = result['case']
        line = (
            f'batch {batch} at {height} x {width}: {names.label} = {result["ratio"]:.3f} (medians)'
        )
        if device in names.target_devices:
            verdict = 'PASS' if result['ratio'] <= TARGET_RATIO else 'FAIL'
            line += f'  {verdict} (target <= {TARGET_RATIO})'
        print(line)


def main(argv=None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--device', choices=('cpu', 'cuda'), default='cuda' if torch.cuda.is_available() else 'cpu'
    )
    parser.add_argument(
        '--model',
        choices=sorted(COMPARISONS),
        default='alrp-retinanet',
        help="the comparison: aLRP Loss RetinaNet vs mmdet's RetinaNet, or RS-ATSS vs mmdet's ATSS",
    )
    parser.add_argument(
        '--case',
        type=parse_case,
        action='append',
        dest='cases',
        metavar='BATCHxHEIGHTxWIDTH',
        help='a batch to time, repeatable (default: 2x512x512 on CPU; '
        '8x512x512 and 4x800x1333 on CUDA)',
    )
    parser.add_argument('--iters', type=int, default=10, help='timed iterations per model')
    parser.add_argument(
        '--warmup',
        type=int,
        default=1,
        help='untimed iterations per model and case (at least 1 on CUDA)',
    )
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error(f'--iters must be >= 1 and --warmup >= 0, got {args.iters}, {args.warmup}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda, but torch.cuda.is_available() is False')
    cases = args.cases or DEFAULT_CASES[args.device]

    init_default_scope('mmdet')
    torch.manual_seed(0)
    models = build_models(args.device, args.model)
    results = [run_case(models, case, args.iters, args.warmup, args.device) for case in cases]
    print_report(results, args.device, args.iters, COMPARISONS[args.model])
    return results


if __name__ == '__main__':
    main()
