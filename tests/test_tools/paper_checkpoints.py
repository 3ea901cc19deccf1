"""Checkpoints in the layout of the aLRP Loss paper's released models (MMDetection 2.1 /
mmcv 0.6), with random weights of the right shapes, written independently of our models: the
key names and shapes follow the paper's modules (torchvision-style ResNet / ResNeXt with mmdet
2.1's ModulatedDeformConvPack, FPN of ConvModules, the heads' own layer names and widths), the
meta holds what mmdet 2.1 and mmcv 0.6 write, and the file is saved in torch's legacy
(non-zip) format, as the torch of that time wrote it.
"""

import math
from collections import OrderedDict
from typing import Dict, Sequence, Tuple

import torch

from mmdet.datasets import CocoDataset

Shapes = Dict[str, Tuple[int, ...]]

BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
NUM_CLASSES = 80


def _bn(prefix: str, channels: int, shapes: Shapes) -> None:
    for name in ('weight', 'bias', 'running_mean', 'running_var'):
        shapes[f'{prefix}.{name}'] = (channels,)
    shapes[f'{prefix}.num_batches_tracked'] = ()


def resnet(
    depth: int,
    groups: int = 1,
    base_width: int = 64,
    dcn_stages: Sequence[int] = (),
    deform_groups: int = 1,
) -> Shapes:
    """ResNet / ResNeXt (Bottleneck, ``pytorch`` style) keys and shapes; DCNv2 in the stages
    ``dcn_stages`` (0-based) adds ``conv2.conv_offset`` (27 offset and mask channels a deform
    group)."""
    shapes: Shapes = {'conv1.weight': (64, 3, 7, 7)}
    _bn('bn1', 64, shapes)
    inplanes = 64
    for stage, blocks in enumerate(BLOCKS[depth]):
        planes = 64 * 2**stage
        width = planes if groups == 1 else math.floor(planes * base_width / 64) * groups
        for block in range(blocks):
            p = f'layer{stage + 1}.{block}'
            shapes[f'{p}.conv1.weight'] = (width, inplanes, 1, 1)
            _bn(f'{p}.bn1', width, shapes)
            shapes[f'{p}.conv2.weight'] = (width, width // groups, 3, 3)
            if stage in dcn_stages:
                shapes[f'{p}.conv2.conv_offset.weight'] = (27 * deform_groups, width, 3, 3)
                shapes[f'{p}.conv2.conv_offset.bias'] = (27 * deform_groups,)
            _bn(f'{p}.bn2', width, shapes)
            shapes[f'{p}.conv3.weight'] = (planes * 4, width, 1, 1)
            _bn(f'{p}.bn3', planes * 4, shapes)
            if block == 0:
                shapes[f'{p}.downsample.0.weight'] = (planes * 4, inplanes, 1, 1)
                _bn(f'{p}.downsample.1', planes * 4, shapes)
            inplanes = planes * 4
    return shapes


def _conv(prefix: str, out: int, inp: int, k: int, shapes: Shapes) -> None:
    shapes[f'{prefix}.weight'] = (out, inp, k, k)
    shapes[f'{prefix}.bias'] = (out,)


def fpn(single_stage: bool) -> Shapes:
    """RetinaNet / FoveaBox FPN (C3-C5, P6 and P7 by convs on C5 and P6) or Faster R-CNN's
    (C2-C5, P6 by max-pool)."""
    shapes: Shapes = {}
    ins = (512, 1024, 2048) if single_stage else (256, 512, 1024, 2048)
    for i, channels in enumerate(ins):
        _conv(f'lateral_convs.{i}.conv', 256, channels, 1, shapes)
        _conv(f'fpn_convs.{i}.conv', 256, 256, 3, shapes)
    if single_stage:
        _conv('fpn_convs.3.conv', 256, 2048, 3, shapes)
        _conv('fpn_convs.4.conv', 256, 256, 3, shapes)
    return shapes


def _towers(shapes: Shapes) -> None:
    for tower in ('cls_convs', 'reg_convs'):
        for i in range(4):
            _conv(f'{tower}.{i}.conv', 256, 256, 3, shapes)


def retina_head(anchors: int) -> Shapes:
    shapes: Shapes = {}
    _towers(shapes)
    _conv('retina_cls', anchors * NUM_CLASSES, 256, 3, shapes)
    _conv('retina_reg', anchors * 4, 256, 3, shapes)
    return shapes


def fovea_head() -> Shapes:
    shapes: Shapes = {}
    _towers(shapes)
    _conv('fovea_cls', NUM_CLASSES, 256, 3, shapes)
    _conv('fovea_reg', 4, 256, 3, shapes)
    return shapes


def rpn_head() -> Shapes:
    shapes: Shapes = {}
    _conv('rpn_conv', 256, 256, 3, shapes)
    _conv('rpn_cls', 3, 256, 1, shapes)
    _conv('rpn_reg', 12, 256, 1, shapes)
    return shapes


def rcnn_bbox_head(
    background_column: bool, class_agnostic: bool = False, num_classes: int = NUM_CLASSES
) -> Shapes:
    shapes: Shapes = {}
    for i, inp in enumerate((256 * 7 * 7, 1024)):
        shapes[f'shared_fcs.{i}.weight'] = (1024, inp)
        shapes[f'shared_fcs.{i}.bias'] = (1024,)
    classes = num_classes + 1 if background_column else num_classes
    shapes['fc_cls.weight'], shapes['fc_cls.bias'] = (classes, 1024), (classes,)
    regressions = 4 if class_agnostic else num_classes * 4
    shapes['fc_reg.weight'], shapes['fc_reg.bias'] = (regressions, 1024), (regressions,)
    return shapes


def prefixed(prefix: str, shapes: Shapes) -> Shapes:
    return {prefix + key: shape for key, shape in shapes.items()}


def paper_shapes(recipe: dict) -> Shapes:
    """The keys and shapes of the paper's checkpoint of a row of configs/paper_recipes.json."""
    dcn = recipe.get('model.backbone.stage_with_dcn') or [False] * 4
    shapes = prefixed(
        'backbone.',
        resnet(
            recipe['model.backbone.depth'],
            recipe.get('model.backbone.groups', 1),
            recipe.get('model.backbone.base_width', 64),
            [i for i, with_dcn in enumerate(dcn) if with_dcn],
        ),
    )
    two_stage = 'model.rpn_head.type' in recipe
    shapes.update(prefixed('neck.', fpn(single_stage=not two_stage)))
    if two_stage:
        shapes.update(prefixed('rpn_head.', rpn_head()))
        shapes.update(
            prefixed(
                'roi_head.bbox_head.',
                rcnn_bbox_head(
                    background_column=not recipe['model.roi_head.bbox_head.type'].startswith('aLRP')
                ),
            )
        )
    elif 'model.bbox_head.anchor_generator.ratios' in recipe:
        anchors = recipe['model.bbox_head.anchor_generator.scales_per_octave'] * len(
            recipe['model.bbox_head.anchor_generator.ratios']
        )
        shapes.update(prefixed('bbox_head.', retina_head(anchors)))
    else:
        shapes.update(prefixed('bbox_head.', fovea_head()))
    return shapes


def random_state_dict(shapes: Shapes, seed: int = 0) -> 'OrderedDict[str, torch.Tensor]':
    gen = torch.Generator().manual_seed(seed)
    state_dict = OrderedDict()
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            state_dict[key] = torch.tensor(1000, dtype=torch.long)
        elif key.endswith('running_var'):
            state_dict[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state_dict[key] = torch.randn(shape, generator=gen) * 0.01
    return state_dict


def paper_meta(recipe: dict) -> dict:
    """The meta of an mmdet 2.1 checkpoint: mmdet's train.py (mmdet_version, config, CLASSES),
    mmcv 0.6's runner (epoch, iter) and save_checkpoint (mmcv_version, time)."""
    heads = [
        recipe[f'model.{head}.type']
        for head in ('bbox_head', 'rpn_head', 'roi_head.bbox_head')
        if f'model.{head}.type' in recipe
    ]
    config = (
        f"model = dict(\n    type='{recipe['model.type']}',\n"
        + ''.join(f"    head=dict(type='{head}'),\n" for head in heads)
        + ')\n'
    )
    if 'train_cfg.assigner.type' in recipe:
        config += f"train_cfg = dict(assigner=dict(type='{recipe['train_cfg.assigner.type']}'))\n"
    return dict(
        mmdet_version='2.1.0+5a2c25f',
        config=config,
        CLASSES=tuple(CocoDataset.METAINFO['classes']),
        epoch=100,
        iter=366500,
        mmcv_version='0.6.2',
        time='Thu Jul 30 12:00:00 2020',
    )


def write_paper_checkpoint(path: str, recipe: dict, seed: int = 0) -> dict:
    """Writes the paper-layout checkpoint of ``recipe``'s row to ``path``; returns it."""
    state_dict = random_state_dict(paper_shapes(recipe), seed)
    checkpoint = dict(
        meta=paper_meta(recipe),
        state_dict=state_dict,
        optimizer=dict(state={}, param_groups=[dict(lr=0.0, momentum=0.9, params=[0, 1])]),
    )
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    return checkpoint
