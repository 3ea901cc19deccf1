"""Every config of the papers' model zoos holds its paper's recipe field by field.

``configs/paper_recipes.json`` (aLRP Loss, mmdet 2.1) and ``configs/rs_paper_recipes.json``
(Rank & Sort Loss, mmdet 2.8) record, per row, the values of the paper's own configs and the
constants of its heads, in the paper's names; ``recipe_fields.py`` and ``rs_recipe_fields.py``
say where each field lives in our MMDetection 3 configs, or why it has no counterpart there. The
check is itself tested: a change of any one value that a config holds makes it fail (mutation
tests).
"""

import copy
import json
from pathlib import Path

import pytest
from mmengine.config import Config

import mmdet_alrp  # noqa: F401  (registers our modules, whose class defaults the check reads)

from .recipe_fields import ALRP_PAPER, Missing, assign, check_of, mismatches, resolve
from .rs_recipe_fields import RS_PAPER

ROOT = Path(__file__).resolve().parents[2]
#: each record of configs/ and the tables that map its fields
PAPERS = {'paper_recipes.json': ALRP_PAPER, 'rs_paper_recipes.json': RS_PAPER}
RECORDS = {record: json.loads((ROOT / 'configs' / record).read_text())['rows'] for record in PAPERS}
ROWS = RECORDS['paper_recipes.json']
RS_ROWS = RECORDS['rs_paper_recipes.json']
#: (record, config) of every row
CASES = [(record, name) for record, rows in RECORDS.items() for name in sorted(rows)]


def load(name: str) -> dict:
    return Config.fromfile(str(ROOT / 'configs' / name)).to_dict()


def changed(value):
    """A value unlike ``value`` (of the same kind where there is one)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + '_changed'
    if isinstance(value, (list, tuple)):
        return list(value) + list(value[-1:]) if value else [0]
    if isinstance(value, dict):
        return dict(value, changed=True)
    return 1  # None


@pytest.mark.parametrize(
    'record,count', [('paper_recipes.json', 14), ('rs_paper_recipes.json', 15)]
)
def test_each_paper_has_its_rows_each_with_its_results_and_links(record, count):
    """Every row has its config, box AP, model and log (or the reason the paper has none), and
    a row evaluated on masks its mask AP."""
    rows = RECORDS[record]
    assert len(rows) == count
    for name, row in rows.items():
        assert (ROOT / 'configs' / name).is_file(), name
        assert 'ap_minival' in row['results']
        metric = row['recipe']['schedule.evaluation.metric']
        assert ('mask_ap_minival' in row['results']) == ('segm' in metric)
        assert row['weights_url'].startswith('https://')
        assert (row['log_url'] or '').startswith('https://') != ('log_note' in row), name
        assert len(row['recipe']) > 100


@pytest.mark.parametrize('record,name', CASES)
def test_config_holds_the_paper_recipe(record, name):
    found = mismatches(load(name), name, RECORDS[record][name]['recipe'], paper=PAPERS[record])
    assert not found, f'{name} differs from the paper in:\n' + '\n'.join(found)


@pytest.mark.parametrize('record', sorted(PAPERS))
def test_every_no_counterpart_and_deliberate_entry_is_used(record):
    """No stale entry: each pattern of the lists applies to a field of some row."""
    used = set()
    for row in RECORDS[record].values():
        for field in row['recipe']:
            check = check_of(row['recipe'], field, PAPERS[record])
            if check.reason is not None:
                used.add(check.reason)
    assert PAPERS[record].reasons() == used


@pytest.mark.parametrize('record,name', CASES)
def test_a_change_of_any_one_value_is_caught(record, name):
    """Every field held at a path of our config: that path changed alone makes the check fail
    on that field (also where the config relies on a class default: the changed value is then
    written into the config)."""
    pristine = load(name)
    recipe = RECORDS[record][name]['recipe']
    paper = PAPERS[record]
    tried = 0
    for field in recipe:
        for path in check_of(recipe, field, paper).paths:
            cfg = copy.deepcopy(pristine)
            assign(cfg, path, changed(resolve(cfg, path)))
            assert mismatches(cfg, name, recipe, [field], paper), f'changing {path} went unnoticed'
            tried += 1
    assert tried > 100


def _without(step_type):
    def drop(cfg):
        dataset = cfg['train_dataloader']['dataset']
        pipeline = (dataset if 'pipeline' in dataset else dataset['dataset'])['pipeline']
        pipeline[:] = [step for step in pipeline if step['type'] != step_type]

    return drop


def _swap_first_two_train_steps(cfg):
    pipeline = cfg['train_dataloader']['dataset']['pipeline']
    pipeline[2], pipeline[3] = pipeline[3], pipeline[2]


def _flip_at_test_time(cfg):
    cfg['test_dataloader']['dataset']['pipeline'].insert(2, dict(type='RandomFlip', prob=0.5))


def _set(path, value):
    return lambda cfg: assign(cfg, path, value)


ATSS = 'alrp_loss/alrp-loss_retinanet-atss_r50_fpn_4xb8-100e_coco-500.py'
AP_RETINA = 'ap_loss/ap-loss_retinanet_r50_fpn_4xb8-100e_coco-500.py'
FASTER_ALRP = 'alrp_loss/alrp-loss_faster-rcnn_r50_fpn_4xb8-100e_coco-500.py'
FASTER = 'faster_rcnn/faster-rcnn_r50_fpn_4xb8-100e_coco-500.py'
RS_MASK = 'rank_sort_loss/rank-sort-loss_mask-rcnn_r50_fpn_4xb4-1x_coco.py'
RS_LVIS = 'rank_sort_loss/rank-sort-loss_mask-rcnn_r50_fpn_sample1e-3_4xb4-ms-640-800-1x_lvis-v1.py'
RS_YOLACT = 'rank_sort_loss/rank-sort-loss_yolact_r50_1xb8-55e_coco.py'
DICE = 'model.roi_head.mask_head.loss_mask.'
YOLACT_DICE = 'model.mask_head.loss_mask.'
RS_COMPUTED_MUTATIONS = [
    (RS_MASK, 'code.roi_head.mask_head.dice_eps', _set(DICE + 'eps', 1e-5)),
    (RS_MASK, 'code.roi_head.mask_head.dice_eps', _set(DICE + 'naive_dice', True)),
    (RS_MASK, 'code.roi_head.mask_head.mask_loss', _set(DICE + 'naive_dice', True)),
    (RS_MASK, 'code.roi_head.mask_head.mask_loss', _set(DICE + 'activate', False)),
    (RS_MASK, 'code.roi_head.mask_head.mask_loss', _set(DICE + 'loss_weight', 2.0)),
    (RS_MASK, 'code.roi_head.mask_head.mask_loss', _set(DICE + 'type', 'CrossEntropyLoss')),
    (RS_MASK, 'code.roi_head.mask_head.mask_loss', _set('model.roi_head.type', 'RankingRoIHead')),
    (
        RS_MASK,
        'model.roi_head.share_roi_extractor',
        _set('model.roi_head.mask_roi_extractor', None),
    ),
    (RS_LVIS, 'data.train_pipeline', _without('RandomFlip')),
    (RS_YOLACT, 'code.mask_head.dice_eps', _set(YOLACT_DICE + 'eps', 1e-5)),
    (RS_YOLACT, 'code.mask_head.mask_loss', _set(YOLACT_DICE + 'activate', True)),
    (RS_YOLACT, 'code.mask_head.mask_loss', _set(YOLACT_DICE + 'naive_dice', True)),
    (RS_YOLACT, 'code.mask_head.mask_loss', _set(YOLACT_DICE + 'type', 'CrossEntropyLoss')),
    (RS_YOLACT, 'code.mask_head.mask_loss', _set('model.mask_head.type', 'YOLACTProtonet')),
    (RS_YOLACT, 'code.mask_head.mask_loss', _set('model.bbox_head.type', 'YOLACTHead')),
    (RS_YOLACT, 'model.mask_head.num_protos', _set('model.mask_head.num_protos', 16)),
    (RS_YOLACT, 'model.bbox_head.num_protos', _set('model.bbox_head.num_protos', 16)),
    (RS_YOLACT, 'model.bbox_head.use_ohem', _set('model.bbox_head.use_ohem', True)),
    (
        RS_YOLACT,
        'model.mask_head.max_masks_to_train',
        _set('model.mask_head.max_masks_to_train', 100),
    ),
    (RS_YOLACT, 'schedule.lr_config.policy', _set('param_scheduler[1].type', 'MultiStepLR')),
    (RS_YOLACT, 'schedule.lr_config.min_lr_ratio', _set('param_scheduler[1].eta_min', 1e-4)),
    (RS_YOLACT, 'schedule.lr_config.min_lr_ratio', _set('param_scheduler[1].eta_min_ratio', 0.01)),
    (RS_YOLACT, 'schedule.total_epochs', _set('param_scheduler[1].T_max', 50)),
    (RS_YOLACT, 'schedule.total_epochs', _set('param_scheduler[1].end', 50)),
    (RS_YOLACT, 'schedule.lr_config.warmup_ratio', _set('param_scheduler[0].start_factor', 0.001)),
    (
        RS_YOLACT,
        'schedule.checkpoint_config.interval',
        _set('default_hooks.checkpoint.interval', 5),
    ),
    (RS_YOLACT, 'schedule.num_gpus', _set('auto_scale_lr.base_batch_size', 16)),
    (
        RS_YOLACT,
        'data.train_pipeline.Resize.img_scale',
        _set('train_dataloader.dataset.pipeline[type=Resize].scale', (700, 700)),
    ),
    (
        RS_YOLACT,
        'data.test_pipeline.MultiScaleFlipAug.img_scale',
        _set('test_dataloader.dataset.pipeline[type=Resize].scale', (700, 700)),
    ),
    (RS_YOLACT, 'data.train_pipeline', _without('PhotoMetricDistortion')),
    (RS_YOLACT, 'code.mask_head.mask_thr', _set('model.test_cfg.mask_thr', 0.4)),
    (RS_YOLACT, 'code.mask_head.segm_branch', _set('model.mask_head.with_seg_branch', True)),
    (RS_YOLACT, 'code.bbox_head.sampler', _set('model.train_cfg.sampler.type', 'OHEMSampler')),
    (RS_YOLACT, 'schedule.cudnn_benchmark', _set('env_cfg.cudnn_benchmark', False)),
    (
        RS_LVIS,
        'data.train.dataset.ann_file',
        _set('train_dataloader.dataset.dataset.ann_file', 'x'),
    ),
    (
        RS_LVIS,
        'data.train.dataset.img_prefix',
        _set('train_dataloader.dataset.dataset.data_root', 'x/'),
    ),
]
COMPUTED_MUTATIONS = [
    (ATSS, 'data.train_pipeline', _without('Expand')),
    (ATSS, 'data.train_pipeline', _swap_first_two_train_steps),
    (ATSS, 'data.test_pipeline.MultiScaleFlipAug.flip', _flip_at_test_time),
    (ATSS, 'data.train.ann_file', _set('train_dataloader.dataset.ann_file', 'x.json')),
    (ATSS, 'data.val.ann_file', _set('val_evaluator.ann_file', 'data/coco/x.json')),
    (ATSS, 'schedule.lr_config.warmup_iters', _set('param_scheduler[0].by_epoch', True)),
    (ATSS, 'schedule.lr_config.policy', _set('param_scheduler[1].by_epoch', False)),
    (ATSS, 'schedule.num_gpus', _set('auto_scale_lr.base_batch_size', 16)),
    (ATSS, 'schedule.images_per_gpu', _set('train_dataloader.batch_size', 4)),
    (
        ATSS,
        'code.bbox_head.cls_bias_init_prior',
        _set('model.bbox_head.init_cfg', dict(type='Normal', layer='Conv2d', std=0.01)),
    ),
    (AP_RETINA, 'code.bbox_head.regression_averaging', _set('model.bbox_head.type', 'RetinaHead')),
    (AP_RETINA, 'model.bbox_head.reg_decoded_bbox', _set('model.bbox_head.reg_decoded_bbox', True)),
    (
        FASTER_ALRP,
        'code.rpn_head.cls_bias_init_prior',
        _set('model.rpn_head.init_cfg.override.bias_prob', 0.5),
    ),
    (
        FASTER,
        'model.roi_head.bbox_head.num_shared_fcs',
        _set('model.roi_head.bbox_head.type', 'Shared4Conv1FCBBoxHead'),
    ),
]


@pytest.mark.parametrize('name,field,mutate', COMPUTED_MUTATIONS)
def test_a_change_of_a_computed_field_is_caught(name, field, mutate):
    cfg = load(name)
    recipe = ROWS[name]['recipe']
    assert not mismatches(cfg, name, recipe, [field])
    mutate(cfg)
    assert mismatches(cfg, name, recipe, [field])


@pytest.mark.parametrize('name,field,mutate', RS_COMPUTED_MUTATIONS)
def test_a_change_of_a_computed_rs_field_is_caught(name, field, mutate):
    cfg = load(name)
    recipe = RS_ROWS[name]['recipe']
    assert not mismatches(cfg, name, recipe, [field], RS_PAPER)
    mutate(cfg)
    assert mismatches(cfg, name, recipe, [field], RS_PAPER)


def test_a_config_name_without_gpus_x_images_is_caught():
    recipe = ROWS[ATSS]['recipe']
    cfg = load(ATSS)
    assert mismatches(cfg, ATSS.replace('_4xb8-', '_'), recipe, ['schedule.num_gpus'])


def test_a_field_the_class_lacks_is_reported_not_raised():
    cfg = load(ATSS)
    with pytest.raises(Missing):
        resolve(cfg, 'model.bbox_head.no_such_argument')
    recipe = dict(ROWS[ATSS]['recipe'])
    cfg['model']['bbox_head']['anchor_generator']['type'] = 'NoSuchGenerator'
    found = mismatches(cfg, ATSS, recipe, ['model.bbox_head.anchor_generator.center_offset'])
    assert found and 'has no' in found[0]
