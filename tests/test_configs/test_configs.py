"""Every config under configs/ loads, builds, trains one step, predicts and runs its pipelines;
every row of the papers' COCO tables (aLRP Loss, Rank & Sort Loss) has its config, whose built
model has the paper's head, backbone, priors and classifier widths (the recipe field by field:
test_paper_recipes.py).

Configs are discovered by glob (configs/_base_/ excluded), so a config added later is tested
with no edit here. Models are built without pretrained weights and run on CPU on 2 generated
128 x 128 images (CARAFE's reassembly, which mmcv has for CUDA only, by tests/carafe_on_cpu.py).
"""

import copy
import json
import random
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

import mmdet_alrp  # noqa: F401  (registers our modules, as the configs' custom_imports do)
from mmdet.registry import MODELS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.testing import demo_mm_inputs
from mmdet_alrp.models.losses import SelfBalance
from tests.carafe_on_cpu import carafe_on_cpu  # noqa: F401  (fixture)

from .recipe_fields import ALRP_HEADS, RANKING_HEADS, our_type
from .rs_recipe_fields import rs_type

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / 'configs'
CONFIGS = sorted(
    path.relative_to(CONFIG_DIR).as_posix()
    for path in CONFIG_DIR.rglob('*.py')
    if '_base_' not in path.relative_to(CONFIG_DIR).parts
)

IMAGE_SIZE = 128

#: The multi-scale test scales documented in configs/alrp_loss/README.md for the TTA row.
TTA_SCALES_800 = [(667, 400), (1000, 600), (1333, 800), (1667, 1000), (2000, 1200)]

#: The aLRP Loss paper's rows, keyed by our config (configs/paper_recipes.json)
ALRP_ROWS = json.loads((CONFIG_DIR / 'paper_recipes.json').read_text())['rows']
#: The Rank & Sort Loss paper's rows (configs/rs_paper_recipes.json)
RS_ROWS = json.loads((CONFIG_DIR / 'rs_paper_recipes.json').read_text())['rows']
ROWS = {**ALRP_ROWS, **RS_ROWS}

#: The row tested with the multi-scale and flip test (tools/dist_test.sh ... --tta).
TTA_ROW = 'alrp_loss/alrp-loss_retinanet-atss_x101-64x4d-mdconv-c3-c5_fpn_4xb4-100e_coco-800.py'


def load(name: str) -> Config:
    return Config.fromfile(str(CONFIG_DIR / name))


def box_head_cfg(model: dict) -> dict:
    """The box head config of a detector (the last stage's of a cascade; a SOLO's mask head)."""
    if 'roi_head' in model:
        head = model.roi_head.bbox_head
    else:
        head = model.bbox_head if 'bbox_head' in model else model.mask_head
    return head[-1] if isinstance(head, list) else head


def has_mask_head(model: dict) -> bool:
    """Whether a detector config predicts instance masks (and trains on them)."""
    return 'mask_head' in model or 'mask_head' in model.get('roi_head', {})


def model_test_cfg(model: dict) -> dict:
    return model.test_cfg.rcnn if 'rcnn' in model.test_cfg else model.test_cfg


def cpu_model_cfg(cfg: Config) -> dict:
    """The model config without pretrained weights, with every box kept (score threshold 0)."""
    model = copy.deepcopy(cfg.model)
    model.backbone.init_cfg = None
    model.init_cfg = None
    model_test_cfg(model).score_thr = 0.0
    if 'rpn' in model.test_cfg:  # fewer proposals than on COCO, for the CPU
        model.train_cfg.rpn_proposal.update(nms_pre=500, max_per_img=200)
        model.test_cfg.rpn.update(nms_pre=500, max_per_img=100)
    return model


def transforms_without_loading(pipeline: list) -> list:
    return [t for t in copy.deepcopy(pipeline) if not t['type'].startswith('Load')]


def generated_sample(height: int = 240, width: int = 320, seed: int = 0) -> dict:
    """A random image with 3 boxes, as LoadImageFromFile and LoadAnnotations leave it."""
    rng = np.random.RandomState(seed)
    boxes = np.array(
        [[20, 30, 120, 150], [150, 40, 300, 200], [60, 100, 200, 230]], dtype=np.float32
    )
    return dict(
        img=rng.randint(0, 256, (height, width, 3), dtype=np.uint8),
        img_shape=(height, width),
        ori_shape=(height, width),
        img_path='generated.jpg',
        img_id=0,
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.array([0, 5, 79], dtype=np.int64),
        gt_ignore_flags=np.zeros(3, dtype=bool),
    )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def assert_boxes_inside(bboxes: torch.Tensor, height: float, width: float) -> None:
    assert bboxes.shape[-1] == 4
    assert (bboxes[:, 0::2] >= -1e-3).all() and (bboxes[:, 0::2] <= width + 1e-3).all()
    assert (bboxes[:, 1::2] >= -1e-3).all() and (bboxes[:, 1::2] <= height + 1e-3).all()


pytestmark = pytest.mark.usefixtures('mmdet_scope_quiet_logs', 'carafe_on_cpu')


def test_configs_are_discovered():
    assert len(CONFIGS) >= len(ROWS) == 14 + 15


@pytest.mark.parametrize('name', sorted(ROWS))
def test_every_paper_row_has_its_config(name):
    assert name in CONFIGS, f'configs/{name} is missing'


@pytest.mark.parametrize('name', sorted(ROWS))
def test_checkpoints_keep_the_last_epochs_and_no_best(name):
    checkpoint = load(name).default_hooks.checkpoint
    assert checkpoint.type == 'CheckpointHook' and checkpoint.interval == 1
    assert checkpoint.max_keep_ckpts == 3 and checkpoint.get('save_last', True)
    assert checkpoint.get('save_best') is None


@pytest.mark.parametrize('name', sorted(ROWS))
def test_paper_rows_run_epochs_evaluate_olrp_and_group_batches(name):
    """What the recipe file implies beyond its fields: an epoch-based loop whose step schedule
    lasts the whole run, the lr not rescaled unless asked, COCO AP with oLRP (LVIS AP on LVIS, for
    which the paper has no oLRP), and batches of one orientation (mmdet 2.1's grouped sampler)."""
    cfg = load(name)
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.param_scheduler[1].end >= cfg.train_cfg.max_epochs
    assert cfg.auto_scale_lr.enable is False
    metric = 'LVISMetric' if ROWS[name].get('dataset') == 'LVIS v1' else 'CocoLRPMetric'
    assert cfg.val_evaluator.type == cfg.test_evaluator.type == metric
    assert cfg.train_dataloader.batch_sampler.type == 'AspectRatioBatchSampler'
    sampler = cfg.train_dataloader.sampler
    assert sampler.type == 'DefaultSampler' and sampler.shuffle


@pytest.mark.parametrize('name', CONFIGS)
def test_config_loads_with_our_modules_and_hooks(name):
    cfg = load(name)
    assert 'mmdet_alrp' in cfg.custom_imports.imports
    hooks = [hook.type for hook in cfg.get('custom_hooks', [])]
    # an aLRP Loss needs its self-balance updated, and only such a model has one
    assert ('SelfBalanceHook' in hooks) == ('aLRPLoss' in str(cfg.model))


@pytest.mark.parametrize('name', CONFIGS)
def test_model_trains_one_step_and_predicts(name):
    cfg = load(name)
    seed_everything(0)
    model = MODELS.build(cpu_model_cfg(cfg))
    model.init_weights()
    if name in ALRP_ROWS:
        check_built_model(model, ALRP_ROWS[name]['recipe'])
    if name in RS_ROWS:
        check_built_rs_model(model, RS_ROWS[name]['recipe'])

    num_classes = box_head_cfg(cfg.model).num_classes
    with_mask = has_mask_head(cfg.model)
    data = demo_mm_inputs(
        2,
        (3, IMAGE_SIZE, IMAGE_SIZE),
        num_items=[3, 2],
        num_classes=num_classes,
        with_mask=with_mask,
    )
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    if hasattr(model, 'roi_head'):
        head = model.roi_head.bbox_head
    else:
        head = model.bbox_head if getattr(model, 'bbox_head', None) is not None else model.mask_head
    cls_weight = [p for n, p in head.named_parameters() if 'cls' in n and n.endswith('weight')][-1]
    weight_before = cls_weight.detach().clone()
    # DDP (find_unused_parameters=False) needs a gradient for every trainable parameter
    no_grad_yet = {key for key, p in model.named_parameters() if p.requires_grad}
    for param_name, param in model.named_parameters():
        if param.requires_grad:
            param.register_post_accumulate_grad_hook(
                lambda _, param_name=param_name: no_grad_yet.discard(param_name)
            )
    model.train()
    log_vars = model.train_step(data, optim_wrapper)
    assert not no_grad_yet, f'parameters without a gradient: {sorted(no_grad_yet)}'
    assert torch.isfinite(log_vars['loss'])
    assert log_vars['loss'] > 0
    assert not torch.equal(cls_weight, weight_before), 'the step left the classifier as it was'
    for balance in (m for m in model.modules() if isinstance(m, SelfBalance)):
        assert balance.sums[2].item() == 1  # the batch entered the self-balance

    model.eval()
    with torch.no_grad():
        results = model.test_step(data)
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        assert len(pred) > 0
        assert len(pred) <= model_test_cfg(cfg.model).max_per_img
        assert pred.bboxes.shape == (len(pred), 4)
        assert_boxes_inside(pred.bboxes, IMAGE_SIZE, IMAGE_SIZE)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert ((pred.labels >= 0) & (pred.labels < num_classes)).all()
        if with_mask:
            assert pred.masks.shape == (len(pred), IMAGE_SIZE, IMAGE_SIZE)

    if name == TTA_ROW:
        check_tta_model(cfg, model, demo_mm_inputs(1, (3, IMAGE_SIZE, IMAGE_SIZE)))


def priors_per_location(recipe: dict, head: str):
    """Anchors per location of the paper's ``head`` (None: FoveaBox's points)."""
    anchors = f'model.{head}.anchor_generator.'
    if anchors + 'ratios' not in recipe:
        return None
    scales = recipe.get(anchors + 'scales_per_octave') or len(recipe[anchors + 'scales'])
    return scales * len(recipe[anchors + 'ratios'])


def check_built_model(model, recipe: dict) -> None:
    """The built model has the paper's head and loss types, priors, classifier widths (those of
    the paper's checkpoints), self-balance and backbone."""
    two_stage = hasattr(model, 'roi_head')
    head = model.roi_head.bbox_head if two_stage else model.bbox_head
    head_key = 'model.roi_head.bbox_head' if two_stage else 'model.bbox_head'
    paper_head = recipe[head_key + '.type']
    assert type(head).__name__ == our_type(paper_head, recipe)
    assert type(head.loss_cls).__name__ == (
        'aLRPLoss'
        if paper_head in ALRP_HEADS
        else 'APLoss'
        if paper_head in RANKING_HEADS
        else recipe[head_key + '.loss_cls.type']
    )
    if two_stage:
        anchors = priors_per_location(recipe, 'rpn_head')
        assert model.rpn_head.prior_generator.num_base_priors == [anchors] * 5
        assert model.rpn_head.rpn_cls.out_channels == anchors
        assert model.rpn_head.rpn_reg.out_channels == anchors * 4
        assert head.fc_cls.out_features == (80 if paper_head in ALRP_HEADS else 81)
        assert head.fc_reg.out_features == 320
    elif priors_per_location(recipe, 'bbox_head') is None:
        assert type(head.prior_generator).__name__ == 'MlvlPointGenerator'
        assert (head.conv_cls.out_channels, head.conv_reg.out_channels) == (80, 4)
    else:
        anchors = priors_per_location(recipe, 'bbox_head')
        assert head.prior_generator.num_base_priors == [anchors] * 5
        # the paper's RetinaNet head; on ATSS's targets our aLRPATSSHead, named atss_*, without
        # normalisation or per-level scales
        atss = type(head).__name__ == 'aLRPATSSHead'
        cls_conv, reg_conv = (
            (head.atss_cls, head.atss_reg) if atss else (head.retina_cls, head.retina_reg)
        )
        assert (cls_conv.out_channels, reg_conv.out_channels) == (anchors * 80, anchors * 4)
        if atss:
            assert all(isinstance(scale, torch.nn.Identity) for scale in head.scales)
            assert not any(conv.with_norm for conv in [*head.cls_convs, *head.reg_convs])
    self_balances = [m for m in model.modules() if isinstance(m, SelfBalance)]
    init_weights = [value for field, value in recipe.items() if field.endswith('SB_weight_init')]
    assert sorted(sb.weight.item() for sb in self_balances) == sorted(init_weights)
    backbone = model.backbone
    assert type(backbone).__name__ == recipe['model.backbone.type']
    assert backbone.depth == recipe['model.backbone.depth']
    if recipe['model.backbone.type'] == 'ResNeXt':
        assert (backbone.groups, backbone.base_width) == (
            recipe['model.backbone.groups'],
            recipe['model.backbone.base_width'],
        )
    deform = [m for m in backbone.modules() if type(m).__name__ == 'ModulatedDeformConv2dPack']
    assert bool(deform) == (recipe.get('model.backbone.dcn.type') == 'DCNv2')


def check_built_rs_model(model, recipe: dict) -> None:
    """The built model has the RS paper's heads with a RankSortLoss each, its priors, classifier,
    coefficient and mask widths (those of its checkpoints: no background column, no centerness
    or IoU branch, no semantic segmentation branch) and backbone."""
    if 'model.roi_head.mask_head.type' in recipe:
        num_classes = recipe['model.roi_head.mask_head.num_classes']
        assert type(model.roi_head).__name__ == 'RankSortRoIHead'
        assert type(model.roi_head.mask_head).__name__ == 'RankingFCNMaskHead'
        assert model.roi_head.mask_head.conv_logits.out_channels == num_classes
    if hasattr(model, 'roi_head'):
        stages = model.roi_head.bbox_head
        stages = stages if isinstance(stages, torch.nn.ModuleList) else [stages]
        heads = [model.rpn_head, *stages]
        assert model.rpn_head.prior_generator.num_base_priors == [3] * 5
        assert (model.rpn_head.rpn_cls.out_channels, model.rpn_head.rpn_reg.out_channels) == (3, 12)
        for index, stage in enumerate(stages):
            key = (
                f'model.roi_head.bbox_head[{index}]'
                if len(stages) > 1
                else 'model.roi_head.bbox_head'
            )
            assert type(stage).__name__ == rs_type(recipe[key + '.type'], recipe)
            agnostic = recipe[key + '.reg_class_agnostic']
            num_classes = recipe[key + '.num_classes']
            assert (stage.fc_cls.out_features, stage.fc_reg.out_features) == (
                num_classes,
                4 if agnostic else 4 * num_classes,
            )
    else:
        head = model.bbox_head
        heads = [head]
        assert type(head).__name__ == rs_type(recipe['model.bbox_head.type'], recipe)
        anchors = priors_per_location(recipe, 'bbox_head')
        assert head.prior_generator.num_base_priors == [anchors] * 5
        num_classes = recipe['model.bbox_head.num_classes']
        if 'model.mask_head.type' in recipe:
            protos = recipe['model.mask_head.num_protos']
            assert protos == recipe['model.bbox_head.num_protos']
            assert (head.conv_cls.out_channels, head.conv_reg.out_channels) == (
                anchors * num_classes,
                anchors * 4,
            )
            assert head.conv_coeff.out_channels == anchors * protos
            assert len(head.head_convs) == recipe['model.bbox_head.num_head_convs']
            protonet = model.mask_head
            assert type(protonet).__name__ == rs_type(recipe['model.mask_head.type'], recipe)
            assert protonet.protonet[-2].out_channels == protos
            assert protonet.segm_branch is None
        else:
            assert (head.atss_cls.out_channels, head.atss_reg.out_channels) == (
                anchors * num_classes,
                anchors * 4,
            )
            assert not hasattr(head, 'atss_centerness')
            assert all(conv.with_norm for conv in [*head.cls_convs, *head.reg_convs])
    assert all(type(head.loss_cls).__name__ == 'RankSortLoss' for head in heads)
    assert not [m for m in model.modules() if isinstance(m, SelfBalance)]
    assert type(model.neck).__name__ == recipe['model.neck.type']
    backbone = model.backbone
    assert (type(backbone).__name__, backbone.depth) == (
        recipe['model.backbone.type'],
        recipe['model.backbone.depth'],
    )
    if recipe['model.backbone.type'] == 'ResNeXt':
        assert (backbone.groups, backbone.base_width) == (
            recipe['model.backbone.groups'],
            recipe['model.backbone.base_width'],
        )
    deform = [m for m in backbone.modules() if type(m).__name__ == 'ModulatedDeformConv2dPack']
    assert len(deform) == (30 if recipe.get('model.backbone.dcn.type') == 'DCNv2' else 0)
    assert all(m.deform_groups == recipe['model.backbone.dcn.deform_groups'] for m in deform)


def check_tta_model(cfg: Config, model, data: dict) -> None:
    """The config's DetTTAModel merges an unflipped and a flipped view of each image."""
    tta = MODELS.build(dict(**copy.deepcopy(cfg.tta_model), module=model))
    flipped = copy.deepcopy(data)
    flipped['inputs'] = [img.flip(-1) for img in flipped['inputs']]
    for sample in flipped['data_samples']:
        sample.set_metainfo(dict(flip=True, flip_direction='horizontal'))
    views = dict(
        inputs=[data['inputs'], flipped['inputs']],
        data_samples=[data['data_samples'], flipped['data_samples']],
    )
    with torch.no_grad():
        merged = tta.test_step(views)
    assert len(merged) == len(data['inputs'])
    for result in merged:
        pred = result.pred_instances
        assert 0 < len(pred) <= cfg.tta_model.tta_cfg.max_per_img
        assert_boxes_inside(pred.bboxes, IMAGE_SIZE, IMAGE_SIZE)


@pytest.mark.parametrize('name', CONFIGS)
def test_train_pipeline_runs_on_a_generated_image(name):
    cfg = load(name)
    dataset = cfg.train_dataloader.dataset
    while 'pipeline' not in dataset:  # dataset wrappers
        dataset = dataset.dataset
    pipeline = Compose(transforms_without_loading(dataset.pipeline))
    resize = next((t for t in dataset.pipeline if t['type'] == 'Resize'), None)
    for seed in range(4):
        seed_everything(seed)
        packed = pipeline(generated_sample(seed=seed))
        assert packed is not None
        image, sample = packed['inputs'], packed['data_samples']
        height, width = sample.img_shape
        assert image.shape == (3, height, width)
        if resize is not None and not resize.get('keep_ratio', False):
            assert (width, height) == tuple(resize['scale'])
        gt = sample.gt_instances
        assert len(gt) > 0
        assert set(gt.labels.tolist()) <= {0, 5, 79}
        assert_boxes_inside(gt.bboxes.tensor, height, width)
        assert (gt.bboxes.widths > 0).all() and (gt.bboxes.heights > 0).all()


def rescaled_shape(height: int, width: int, scale: Tuple[int, int]) -> Tuple[int, int]:
    """(height, width) of an image resized keeping its ratio within (long side, short side)."""
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


@pytest.mark.parametrize('name', CONFIGS)
def test_test_and_tta_pipelines_run_on_a_generated_image(name):
    cfg = load(name)
    test_pipeline = cfg.test_dataloader.dataset.pipeline
    resize = next(t for t in test_pipeline if t['type'] == 'Resize')
    packed = Compose(transforms_without_loading(test_pipeline))(generated_sample())
    if resize.get('keep_ratio', False):
        expected = rescaled_shape(240, 320, resize['scale'])
    else:  # YOLACT's square input
        expected = tuple(resize['scale'])[::-1]
    assert tuple(packed['data_samples'].img_shape) == expected
    if 'tta_pipeline' not in cfg:
        return
    assert cfg.tta_pipeline[0]['type'] == 'LoadImageFromFile'
    tta = Compose(transforms_without_loading(cfg.tta_pipeline))
    views = tta(generated_sample())
    scales = [t['scale'] for t in cfg.tta_pipeline[1]['transforms'][0]]
    assert len(views['inputs']) == 2 * len(scales)
    shapes = {tuple(sample.img_shape) for sample in views['data_samples']}
    assert shapes == {rescaled_shape(240, 320, scale) for scale in scales}
    assert sorted(sample.flip for sample in views['data_samples']) == [False] * len(scales) + [
        True
    ] * len(scales)


def test_tta_row_uses_the_documented_scales():
    cfg = load(TTA_ROW)
    assert cfg.tta_model.type == 'DetTTAModel'
    resizes = cfg.tta_pipeline[1].transforms[0]
    assert [tuple(t.scale) for t in resizes] == TTA_SCALES_800
    assert all(t.keep_ratio for t in resizes)
    assert [t.prob for t in cfg.tta_pipeline[1].transforms[1]] == [1.0, 0.0]


def write_tiny_coco(root: Path, num_images: int = 2) -> None:
    """A COCO-format dataset of generated images with boxes of COCO's first classes."""
    import mmcv
    from mmengine.fileio import dump

    from mmdet.datasets import CocoDataset

    classes = CocoDataset.METAINFO['classes']
    rng = np.random.RandomState(0)
    for split in ('train', 'val'):
        (root / split).mkdir(parents=True)
        images, annotations = [], []
        for image_id in range(1, num_images + 1):
            name = f'{image_id:03d}.jpg'
            mmcv.imwrite(
                rng.randint(0, 256, (120, 160, 3), dtype=np.uint8), str(root / split / name)
            )
            images.append(dict(id=image_id, file_name=name, height=120, width=160))
            for box_id, (x, y, w, h) in enumerate([(10, 20, 60, 50), (80, 30, 70, 80)]):
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=box_id + 1,
                        bbox=[x, y, w, h],
                        area=w * h,
                        iscrowd=0,
                    )
                )
        dump(
            dict(
                images=images,
                annotations=annotations,
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(classes)],
            ),
            str(root / f'{split}.json'),
        )


def test_recipe_runs_one_epoch_with_the_runner(tmp_path):
    """The whole recipe of a row (data loaders, schedule, hooks, SB update, COCO AP and oLRP
    evaluation, checkpoints) through MMEngine's Runner, on 2 generated images."""
    from mmengine.runner import Runner

    write_tiny_coco(tmp_path / 'coco')
    cfg = load('alrp_loss/alrp-loss_retinanet-atss_r50_fpn_4xb8-100e_coco-500.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.score_thr = 0.0  # an untrained model's boxes, for the evaluation
    cfg.work_dir = str(tmp_path / 'work_dir')
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    for split, loader in (('train', cfg.train_dataloader), ('val', cfg.val_dataloader)):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(
            data_root=str(tmp_path / 'coco'),
            ann_file=f'{split}.json',
            data_prefix=dict(img=f'{split}/'),
        )
        loader.dataset.pop('filter_cfg', None)
    cfg.val_evaluator.ann_file = str(tmp_path / 'coco' / 'val.json')
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook')
    runner = Runner.from_cfg(cfg)
    runner.train()
    balance = runner.model.bbox_head.loss_cls.self_balance
    assert balance.weight.item() != 50 and balance.sums.sum().item() == 0  # updated at epoch end
    assert (tmp_path / 'work_dir' / 'epoch_1.pth').exists()
    assert not list((tmp_path / 'work_dir').glob('best*.pth'))
    metrics = runner.val_loop.run()
    assert {'coco/bbox_mAP', 'coco/bbox_moLRP'} <= set(metrics)
    assert 0 <= metrics['coco/bbox_moLRP'] <= 1
