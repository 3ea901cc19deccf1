"""Checkpoints in the layout of the Rank & Sort Loss paper's released models (its MMDetection 2.8
fork, mmcv 1.2), with random weights of the right shapes, written independently of our models:
the key names and shapes follow the fork's modules (ResNet or ResNeXt with mmcv's
ModulatedDeformConv2dPack of 4 deform groups, FPN or FPN_CARAFE of ConvModules and CARAFEPacks,
its RPN, its R-CNN box head of one sigmoid logit a class (80 on COCO, 1203 on LVIS), Mask
R-CNN's FCNMaskHead (4 convs, a deconvolution, a 1x1 conv of a channel a class), its ATSS / PAA
head of GroupNorm towers without a centerness or IoU branch, its YOLACT head and protonet),
the meta holds what the fork's tools/train.py and mmcv 1.2's runner write, and the file is saved
in torch's zip format. The building blocks are those of the aLRP Loss paper's layout
(paper_checkpoints.py), which the two papers' modules share.
"""

from collections import OrderedDict
from typing import Dict

import torch

from mmdet.datasets import CocoDataset, LVISV1Dataset

from .paper_checkpoints import (
    NUM_CLASSES,
    Shapes,
    _conv,
    fpn,
    prefixed,
    random_state_dict,
    rcnn_bbox_head,
    resnet,
    rpn_head,
)

#: CARAFE's reassembly kernels: up_kernel 5, up_group 1, scale 2 -> 5 * 5 * 2 * 2 channels
CARAFE_KERNEL_CHANNELS = 5 * 5 * 1 * 2 * 2
CARAFE_COMPRESSED = 64


def fpn_carafe() -> Shapes:
    """FPN_CARAFE on C2-C5: a 3x3 stride-2 lateral conv on C5 (P6) and one CARAFEPack (channel
    compressor, content encoder) per top-down upsampling."""
    shapes: Shapes = {}
    for i, channels in enumerate((256, 512, 1024, 2048)):
        _conv(f'lateral_convs.{i}.conv', 256, channels, 1, shapes)
    _conv('lateral_convs.4.conv', 256, 2048, 3, shapes)
    for i in range(5):
        _conv(f'fpn_convs.{i}.conv', 256, 256, 3, shapes)
    for i in range(4):
        _conv(f'upsample_modules.{i}.channel_compressor', CARAFE_COMPRESSED, 256, 1, shapes)
        _conv(
            f'upsample_modules.{i}.content_encoder',
            CARAFE_KERNEL_CHANNELS,
            CARAFE_COMPRESSED,
            3,
            shapes,
        )
    return shapes


def fpn_p3_p7() -> Shapes:
    """ATSS / PAA's FPN: C3-C5 and two extra convs on the P5 output."""
    shapes: Shapes = {}
    for i, channels in enumerate((512, 1024, 2048)):
        _conv(f'lateral_convs.{i}.conv', 256, channels, 1, shapes)
    for i in range(5):
        _conv(f'fpn_convs.{i}.conv', 256, 256, 3, shapes)
    return shapes


def atss_head(anchors: int) -> Shapes:
    """The fork's ATSS / PAA head: GroupNorm towers (convs without bias), atss_cls, atss_reg and
    a scale per level; no atss_centerness."""
    shapes: Shapes = {}
    for tower in ('cls_convs', 'reg_convs'):
        for i in range(4):
            shapes[f'{tower}.{i}.conv.weight'] = (256, 256, 3, 3)
            shapes[f'{tower}.{i}.gn.weight'] = (256,)
            shapes[f'{tower}.{i}.gn.bias'] = (256,)
    _conv('atss_cls', anchors * NUM_CLASSES, 256, 3, shapes)
    _conv('atss_reg', anchors * 4, 256, 3, shapes)
    for i in range(5):
        shapes[f'scales.{i}.scale'] = ()
    return shapes


def yolact_heads(anchors: int, num_protos: int) -> Shapes:
    """The fork's RankSortYOLACTHead (one shared 3x3 conv, conv_cls of one sigmoid logit a class
    and anchor, conv_reg, conv_coeff of a coefficient a prototype and anchor) and
    RankSortYOLACTProtonet (four 3x3 convs of 256 channels, the second upsampling, and a 1x1
    conv of a channel a prototype, each after a ReLU or upsampling in its Sequential)."""
    shapes: Shapes = {}
    _conv('bbox_head.head_convs.0.conv', 256, 256, 3, shapes)
    _conv('bbox_head.conv_cls', anchors * NUM_CLASSES, 256, 3, shapes)
    _conv('bbox_head.conv_reg', anchors * 4, 256, 3, shapes)
    _conv('bbox_head.conv_coeff', anchors * num_protos, 256, 3, shapes)
    for i in (0, 2, 4, 8):
        _conv(f'mask_head.protonet.{i}', 256, 256, 3, shapes)
    _conv('mask_head.protonet.10', num_protos, 256, 1, shapes)
    return shapes


def fcn_mask_head(num_classes: int) -> Shapes:
    """mmdet 2.8's FCNMaskHead: 4 ConvModules of 3x3 (256 channels), a 2x deconvolution
    (ConvTranspose2d weights are (in, out, k, k)) and a 1x1 conv of a logit channel a class."""
    shapes: Shapes = {}
    for i in range(4):
        _conv(f'convs.{i}.conv', 256, 256, 3, shapes)
    shapes['upsample.weight'], shapes['upsample.bias'] = (256, 256, 2, 2), (256,)
    _conv('conv_logits', num_classes, 256, 1, shapes)
    return shapes


def rs_paper_shapes(recipe: dict) -> Shapes:
    """The keys and shapes of the paper's checkpoint of a row of configs/rs_paper_recipes.json."""
    dcn = recipe.get('model.backbone.stage_with_dcn') or [False] * 4
    shapes = prefixed(
        'backbone.',
        resnet(
            recipe['model.backbone.depth'],
            groups=recipe.get('model.backbone.groups', 1),
            base_width=recipe.get('model.backbone.base_width', 64),
            dcn_stages=[i for i, with_dcn in enumerate(dcn) if with_dcn],
            deform_groups=recipe.get('model.backbone.dcn.deform_groups', 1),
        ),
    )
    if 'model.rpn_head.type' not in recipe:
        neck = fpn_p3_p7()
        anchors = recipe['model.bbox_head.anchor_generator.scales_per_octave'] * len(
            recipe['model.bbox_head.anchor_generator.ratios']
        )
        if 'model.mask_head.type' in recipe:
            neck['fpn_convs.3.conv.weight'] = (256, 2048, 3, 3)  # YOLACT's P6: on C5
            shapes.update(prefixed('neck.', neck))
            shapes.update(yolact_heads(anchors, recipe['model.mask_head.num_protos']))
        else:
            shapes.update(prefixed('neck.', neck))
            shapes.update(prefixed('bbox_head.', atss_head(anchors)))
        return shapes
    carafe = recipe['model.neck.type'] == 'FPN_CARAFE'
    shapes.update(prefixed('neck.', fpn_carafe() if carafe else fpn(single_stage=False)))
    shapes.update(prefixed('rpn_head.', rpn_head()))
    if 'model.roi_head.num_stages' in recipe:
        for stage in range(recipe['model.roi_head.num_stages']):
            agnostic = recipe[f'model.roi_head.bbox_head[{stage}].reg_class_agnostic']
            shapes.update(
                prefixed(
                    f'roi_head.bbox_head.{stage}.',
                    rcnn_bbox_head(background_column=False, class_agnostic=agnostic),
                )
            )
    else:
        num_classes = recipe['model.roi_head.bbox_head.num_classes']
        shapes.update(
            prefixed(
                'roi_head.bbox_head.',
                rcnn_bbox_head(background_column=False, num_classes=num_classes),
            )
        )
    if 'model.roi_head.mask_head.type' in recipe:
        mask_classes = recipe['model.roi_head.mask_head.num_classes']
        shapes.update(prefixed('roi_head.mask_head.', fcn_mask_head(mask_classes)))
    return shapes


def rs_paper_meta(recipe: dict, paper_config: str) -> Dict[str, object]:
    """The meta of a checkpoint of the fork: its tools/train.py (mmdet_version: '2.8.0' and the
    first 7 hex digits of the git HEAD, with no separator; CLASSES; env_info, config, seed,
    exp_name), mmcv 1.2's runner (epoch, iter, hook_msgs) and save_checkpoint (mmcv_version,
    time). ``config`` names the types of the row's model as the fork's pretty_text does."""
    heads = [
        recipe[key]
        for key in (
            'model.rpn_head.type',
            'model.roi_head.type',
            'model.roi_head.bbox_head.type',
            'model.roi_head.bbox_head[0].type',
            'model.roi_head.mask_head.type',
            'model.bbox_head.type',
            'model.mask_head.type',
        )
        if key in recipe
    ]
    config = (
        f"model = dict(\n    type='{recipe['model.type']}',\n"
        f"    neck=dict(type='{recipe['model.neck.type']}'),\n"
        + ''.join(f"    head=dict(type='{head}'),\n" for head in heads)
        + ')\n'
    )
    epochs = recipe['schedule.total_epochs']
    lvis = recipe.get('data.train.dataset.type') == 'LVISV1Dataset'
    dataset = LVISV1Dataset if lvis else CocoDataset
    return dict(
        env_info='sys.platform: linux\nPyTorch: 1.7.1\nMMCV: 1.2.4\nMMDetection: 2.8.0+b41f64d',
        config=config,
        seed=None,
        exp_name=paper_config.rsplit('/', 1)[-1],
        mmdet_version='2.8.0b41f64d',
        CLASSES=tuple(dataset.METAINFO['classes']),
        epoch=epochs,
        iter=epochs * 7330,
        hook_msgs=dict(last_ckpt=f'work_dirs/rs/epoch_{epochs - 1}.pth'),
        mmcv_version='1.2.4',
        time='Sun Jul 25 12:00:00 2021',
    )


def write_rs_paper_checkpoint(path: str, row: dict, seed: int = 0) -> dict:
    """Writes the fork-layout checkpoint of the record's ``row`` to ``path``; returns it."""
    recipe = row['recipe']
    state_dict: OrderedDict[str, torch.Tensor] = random_state_dict(rs_paper_shapes(recipe), seed)
    checkpoint = dict(
        meta=rs_paper_meta(recipe, row['paper_config']),
        state_dict=state_dict,
        optimizer=dict(state={}, param_groups=[dict(lr=0.0, momentum=0.9, params=[0, 1])]),
    )
    torch.save(checkpoint, path)
    return checkpoint
