"""How each field of the paper's recipes (``configs/paper_recipes.json``, in the paper's
mmdet 2.1 names) reads in our MMDetection 3 configs, and the one list of the fields that have no
MMDetection 3 counterpart or in which we deliberately differ, with the reasons.

A recipe field is a dotted path of the paper's resolved config (``model.*``, ``train_cfg.*``,
``test_cfg.*``, ``data.*``, ``schedule.*``) or a constant its head code hard-codes
(``code.<head>.*``). :data:`RULES` maps it, by the first rule whose pattern matches, to

- one or more paths of our resolved config, compared after ``expect`` turns the paper's value
  into ours (a renamed key, an mmdet 3 type name); a key our config leaves out is read from the
  default of the class that its dict builds (``class_default``);
- or a function of our config (``compute``), for what no single key holds;
- or a :data:`NO_COUNTERPART` / :data:`DELIBERATE` entry: the reason, and for a deliberate
  difference the value we use instead, which is compared like any other.

Our path syntax: keys joined by ``.``; ``name[3]`` indexes a list, ``name[type=Resize]`` picks
the element of a list whose ``type`` is ``Resize``.

These tables are the aLRP Loss paper's, :data:`ALRP_PAPER`; another paper's record has its own
:class:`Paper` (``rs_recipe_fields.py``), whose rules may end with :data:`RULES`.
"""

import copy
import dataclasses
import inspect
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import mmcv.ops

import mmdet_alrp  # noqa: F401  (the defaults of our classes are read from their registry)
from mmdet.registry import HOOKS, METRICS, MODELS, OPTIM_WRAPPERS, TASK_UTILS, TRANSFORMS

#: mmdet 2.1 / the paper's type names that our configs spell otherwise
TYPE_NAMES = {
    'aLRPLossRetinaHead': 'aLRPRetinaHead',
    'aLRPLossFoveaHead': 'aLRPFoveaHead',
    'aLRPLossRPNHead': 'aLRPRPNHead',
    'aLRPLossShared2FCBBoxHead': 'aLRPBBoxHead',
    'step': 'MultiStepLR',
    'linear': 'LinearLR',
    'CosineAnnealing': 'CosineAnnealingLR',
}
RANKING_HEADS = (
    'APLossRetinaHead',
    'APLossFoveaHead',
    'aLRPLossRetinaHead',
    'aLRPLossFoveaHead',
    'aLRPLossRPNHead',
    'aLRPLossShared2FCBBoxHead',
)
ALRP_HEADS = tuple(head for head in RANKING_HEADS if head.startswith('aLRP'))
AP_HEADS = tuple(head for head in RANKING_HEADS if head.startswith('AP'))

#: How each of the heads averages its regression loss, in the words of the recipe file (the
#: heads' tests prove ours: test_ap_loss_retina_head.py, test_ap_loss_fovea_head.py,
#: test_alrp_loss_terms.py; mmdet's own heads are mmdet's).
REGRESSION_AVERAGING = {
    'APLossRetinaHead': 'mean over the 4P coordinates of the positives',
    'APLossFoveaHead': 'mean over the 4P coordinates of the positives',
    'aLRPRetinaHead': 'aLRP: mean over the positives of the cumulative localisation error / rank',
    'aLRPATSSHead': 'aLRP: mean over the positives of the cumulative localisation error / rank',
    'aLRPFoveaHead': 'aLRP: mean over the positives of the cumulative localisation error / rank',
    'aLRPRPNHead': 'aLRP: mean over the positives of the cumulative localisation error / rank',
    'aLRPBBoxHead': 'aLRP: mean over the positives of the cumulative localisation error / rank',
    'FoveaHead': 'sum over the coordinates of the positives / P',
    'RPNHead': 'sum / number of sampled priors (positives + negatives)',
    'Shared2FCBBoxHead': 'sum / number of sampled priors (positives + negatives)',
}

GIOU_IN_OUR_CODE = (
    'our aLRP heads take no loss_bbox: the localisation error of a positive is '
    '(1 - GIoU) / (2 (1 - tau)), computed by mmdet_alrp/models/losses/'
    "loc_error.py with mmdet's bbox_overlaps (eps 1e-6, as GIoULoss's); "
    'the normaliser is checked through tau (code.*.localisation_error_normaliser)'
)
FORMATTING = (
    'formatting only: PackDetInputs packs the image, boxes and labels for the model '
    '(mmdet 3 has no DefaultFormatBundle / ImageToTensor / Collect)'
)

#: The fields that MMDetection 3 cannot express or has no use for, with the reason. Keys are
#: patterns of recipe fields; a value is the reason, or (condition on the recipe, reason).
NO_COUNTERPART: Dict[str, Any] = {
    r'model\.neck\.extra_convs_on_inputs': (
        'deprecated in mmdet 2.x and gone in mmdet 3: add_extra_convs="on_input" says the same '
        '(checked as model.neck.add_extra_convs)'
    ),
    r'model\.(bbox_head|rpn_head)\.background_label_effective': (
        'mmdet 3 heads take no background_label: the background index is num_classes, 80, the '
        'value the paper resolves to'
    ),
    r'model\.(bbox_head|rpn_head|roi_head\.bbox_head)\.loss_bbox\..*': (
        lambda recipe, path: _head_type(recipe, path) in ALRP_HEADS,
        GIOU_IN_OUR_CODE,
    ),
    r'code\..*\.localisation_error': GIOU_IN_OUR_CODE,
    r'model\.roi_head\.bbox_head\.use_sigmoid': (
        lambda recipe, path: _head_type(recipe, path) in ALRP_HEADS,
        'aLRPBBoxHead always has one sigmoid logit per class and no background column (the '
        'paper hard-codes use_sigmoid in its aLRP R-CNN head); checked on the built model in '
        'test_configs.py (fc_cls width)',
    ),
    r'(train_cfg\.rpn_proposal|test_cfg\.rpn)\.nms_across_levels': (
        "mmdet 3's RPN always applies NMS per level (batched by level ids), which is what "
        'nms_across_levels=False meant'
    ),
    r'(train_cfg\.rpn_proposal|test_cfg\.rpn)\.nms_post': (
        'mmdet 3 keeps max_per_img proposals after the per-level NMS; mmdet 2.1 kept nms_post '
        'per level then max_num overall, the same proposals when nms_post >= max_num (1000 = '
        '1000); max_num is checked as max_per_img'
    ),
    r'data\.train_pipeline\.Resize\.multiscale_mode': (
        'mmdet 3\'s Resize takes one scale; "range" over the one scale given is that scale'
    ),
    r'data\.train_pipeline\.Resize\.ratio_range': (
        "mmdet 3's Resize has no ratio_range (RandomResize has); the paper leaves it None"
    ),
    r'data\.(train|test)_pipeline\.(DefaultFormatBundle|ImageToTensor|Collect)\..*': FORMATTING,
    r'code\.bbox_head\.target_clamp': (
        "hard-coded in mmdet 3.3's FoveaHead as in mmdet 2.1's (the log-distance targets are "
        'clamped to [1/16, 16] in FoveaHead._get_targets_single)'
    ),
    r'code\..*\.cls_avg_factor': (
        "mmdet 3.3's FoveaHead, RPNHead and BBoxHead average the classification loss as mmdet "
        "2.1's did (positives + images; sampled anchors; RoIs of non-zero weight)"
    ),
    r'code\..*\.eps': (
        lambda recipe, path: recipe[path] is None,
        "the paper's AP Loss has no eps, and neither has ours (APLoss takes delta only)",
    ),
}

#: The fields in which we deliberately differ: pattern -> (our path, our value, reason).
DELIBERATE: Dict[str, Tuple[str, Any, str]] = {
    r'code\.(bbox_head|rpn_head|roi_head\.bbox_head)\.SB_period_iterations': (
        'custom_hooks[type=SelfBalanceHook].period',
        None,
        'SB is updated once an epoch (period None). The paper hard-codes 3665 iterations: one '
        'epoch of COCO train2017 at 32 images an iteration, so half an epoch for the 800-scale '
        'rows (16 images an iteration). Also by design: SB averages the losses of every rank '
        "(all-reduced; each of the paper's GPUs kept its own), and SB is saved in checkpoints",
    ),
    r'schedule\.evaluation\.interval': (
        'train_cfg.val_interval',
        5,
        'evaluated on minival every 5 epochs (and after the last), not after every epoch: '
        "evaluation does not change the training, and the paper reports the last epoch's model",
    ),
    r'model\.(bbox_head|rpn_head)\.reg_decoded_bbox': (
        '{head}.reg_decoded_bbox',
        True,
        'only for the aLRP heads (the others compare as usual): the paper encodes the targets '
        'with the coder and decodes targets and deltas inside the loss around a unit box at the '
        'origin; ours decode both around the anchor. GIoU does not change under the per-axis '
        'scaling and shift between the two, and the log-ratio clip (16/1000) is the same, so '
        'the localisation errors are equal',
    ),
    r'model\.roi_head\.type': (
        'model.roi_head.type',
        'RankingRoIHead',
        "only for the aLRP R-CNN: mmdet's StandardRoIHead whose loss first checks every "
        'ground-truth label and box of the batch (no proposal is sampled from the ground truth, '
        'so the box head sees only the ground truth some RoI matches); training is the same',
    ),
}
DELIBERATE_WHEN = {
    r'model\.roi_head\.type': lambda recipe, path: (
        recipe.get('model.roi_head.bbox_head.type') in ALRP_HEADS
    ),
    r'model\.(bbox_head|rpn_head)\.reg_decoded_bbox': lambda recipe, path: (
        _head_type(recipe, path) in ALRP_HEADS
    ),
}


#: The heads of a recipe field: ``roi_head.bbox_head[i]`` is stage i of a cascade.
HEADS = r'(bbox_head|rpn_head|roi_head\.bbox_head(?:\[\d+\])?)'


@dataclass
class Rule:
    """A recipe field pattern and how our config holds it."""

    pattern: str
    ours: Sequence[str] = ()  # our paths, in which \1, \2 are the pattern's groups
    expect: Callable[[Any, dict], Any] = lambda value, recipe: value
    compute: Optional[Callable[[dict, str, 're.Match'], Any]] = None  # (cfg, name, match)
    when: Optional[Callable[[dict, str], bool]] = None  # (recipe, field): the rule applies


def _head_type(recipe: dict, path: str) -> str:
    head = re.match(r'(?:model|code)\.' + HEADS, path).group(1)
    return recipe[f'model.{head}.type']


def our_type(value, recipe):
    """Our type name; the paper's RetinaNet head on ATSS's targets is our aLRPATSSHead."""
    if value == 'aLRPLossRetinaHead' and recipe.get('train_cfg.assigner.type') == 'ATSSAssigner':
        return 'aLRPATSSHead'
    return TYPE_NAMES.get(value, value)


def _pipeline_types(value: List[str], recipe: dict, test: bool = False) -> List[str]:
    """The paper's pipeline steps as mmdet 3 has them: Normalize and Pad happen in the model's
    data_preprocessor, DefaultFormatBundle / ImageToTensor + Collect are PackDetInputs, the test
    scale of MultiScaleFlipAug (flip=False) is a plain Resize, and the test pipeline loads the
    annotations after it for the evaluator's data samples."""
    dropped = ('Normalize', 'Pad', 'DefaultFormatBundle', 'ImageToTensor', 'MultiScaleFlipAug')
    types = ['PackDetInputs' if t == 'Collect' else t for t in value if t not in dropped]
    if test:
        types.insert(types.index('Resize') + 1, 'LoadAnnotations')
    return types


def _types_of(pipeline: str) -> Callable[[dict, str, 're.Match'], List[str]]:
    return lambda cfg, name, match: [step['type'] for step in resolve(cfg, pipeline)]


def _data_file(cfg: dict, name: str, match: 're.Match'):
    """data_root + ann_file (and the evaluator's ann_file) or data_root + the image folder."""
    split, key = match.groups()
    dataset = cfg[f'{split}_dataloader']['dataset']
    if key == 'img_prefix':
        return dataset['data_root'] + dataset['data_prefix']['img']
    paths = {dataset['data_root'] + dataset['ann_file']}
    if split != 'train':
        paths.add(cfg[f'{split}_evaluator']['ann_file'])
    return paths.pop() if len(paths) == 1 else sorted(paths)


def _gpus_and_images(cfg: dict, name: str) -> Tuple[int, int]:
    """(GPUs, images per GPU) that the config's name says (``_4xb8-``), if its batch size and
    auto_scale_lr.base_batch_size say the same; None where they do not."""
    found = re.search(r'_(\d+)xb(\d+)-', name)
    if found is None:
        return None, None
    gpus, images = int(found.group(1)), int(found.group(2))
    if (
        cfg['train_dataloader']['batch_size'] != images
        or cfg['auto_scale_lr']['base_batch_size'] != gpus * images
    ):
        return None, None
    return gpus, images


def _bias_prior(cfg: dict, name: str, match: 're.Match'):
    """The bias prior of the classifier in the (default) init_cfg of the head."""
    init_cfg = resolve(cfg, f'model.{match.group(1)}.init_cfg')
    overrides = init_cfg.get('override', [])
    overrides = overrides if isinstance(overrides, list) else [overrides]
    priors = [o['bias_prob'] for o in overrides if 'bias_prob' in o]
    return priors[0] if priors else None


def _regression_averaging(cfg: dict, name: str, match: 're.Match') -> str:
    head = resolve(cfg, f'model.{match.group(1)}.type')
    return REGRESSION_AVERAGING.get(head, f'not known for {head}')


def _decode_wh_ratio_clip(cfg: dict, name: str, match: 're.Match') -> float:
    """The log-ratio clip of the head's coder: a default of its ``decode``, which the heads
    call without it."""
    coder = class_of(resolve(cfg, f'model.{match.group(1)}.bbox_coder.type'))
    return inspect.signature(coder.decode).parameters['wh_ratio_clip'].default


def _built_head_decodes(cfg: dict, name: str, match: 're.Match') -> bool:
    """``reg_decoded_bbox`` of the head built from the config: the ranking heads default it by
    their loss (None in their signature)."""
    return MODELS.build(copy.deepcopy(cfg['model'][match.group(1)])).reg_decoded_bbox


def _built_roi_bbox_head(cfg: dict, name: str, match: 're.Match'):
    """An attribute of the R-CNN box head built from the config (Shared2FCBBoxHead fixes its
    numbers of layers in code, not in its arguments)."""
    head = MODELS.build(copy.deepcopy(cfg['model']['roi_head']['bbox_head']))
    return getattr(head, match.group(1))


RULES: List[Rule] = [
    Rule(r'model\.type', ['model.type']),
    Rule(r'model\.pretrained', ['model.backbone.init_cfg.checkpoint']),
    Rule(r'model\.backbone\.dcn\.deformable_groups', ['model.backbone.dcn.deform_groups']),
    Rule(
        r'model\.backbone\.stem_channels',
        compute=lambda cfg, name, match: (
            resolve(cfg, 'model.backbone.stem_channels')
            or resolve(cfg, 'model.backbone.base_channels')
        ),
    ),
    Rule(r'model\.(backbone|neck)\.(.+)', [r'model.\1.\2']),
    Rule(r'model\.' + HEADS + r'\.type', [r'model.\1.type'], our_type),
    Rule(r'model\.bbox_head\.deformable_groups', ['model.bbox_head.deform_groups']),
    Rule(r'model\.rpn_head\.head_weight', ['model.rpn_head.loss_cls.loss_weight']),
    Rule(
        r'model\.roi_head\.bbox_head\.use_sigmoid',
        ['model.roi_head.bbox_head.loss_cls.use_sigmoid'],
    ),
    Rule(
        r'model\.roi_head\.bbox_head\.(num_\w+_(?:convs|fcs)|with_avg_pool|with_cls|with_reg)',
        compute=_built_roi_bbox_head,
    ),
    # the AP Loss heads' regression loss lives in their APLoss
    Rule(
        r'model\.' + HEADS + r'\.loss_bbox\.(.+)',
        [r'model.\1.loss_cls.loss_bbox.\2'],
        when=lambda recipe, field: _head_type(recipe, field) in AP_HEADS,
    ),
    Rule(
        r'model\.roi_head\.bbox_roi_extractor\.roi_layer\.out_size',
        ['model.roi_head.bbox_roi_extractor.roi_layer.output_size'],
    ),
    Rule(
        r'model\.roi_head\.bbox_roi_extractor\.roi_layer\.sample_num',
        ['model.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio'],
    ),
    Rule(
        r'model\.(bbox_head)\.reg_decoded_bbox',
        compute=_built_head_decodes,
        when=lambda recipe, field: _head_type(recipe, field) in AP_HEADS,
    ),
    Rule(r'model\.(.+)', [r'model.\1']),
    Rule(r'(train_cfg\.rpn_proposal|test_cfg\.rpn)\.max_num', [r'model.\1.max_per_img']),
    Rule(r'(train_cfg\.rpn_proposal|test_cfg\.rpn)\.nms_thr', [r'model.\1.nms.iou_threshold']),
    Rule(r'(test_cfg(?:\.rcnn)?)\.nms\.iou_thr', [r'model.\1.nms.iou_threshold']),
    Rule(r'((?:train|test)_cfg\..+)', [r'model.\1']),
    Rule(r'data\.samples_per_gpu', ['train_dataloader.batch_size']),
    Rule(r'data\.workers_per_gpu', ['train_dataloader.num_workers']),
    Rule(
        r'data\.(?:img_norm_cfg|(?:train|test)_pipeline\.Normalize)\.(mean|std)',
        [r'model.data_preprocessor.\1'],
    ),
    Rule(
        r'data\.(?:img_norm_cfg|(?:train|test)_pipeline\.Normalize)\.to_rgb',
        ['model.data_preprocessor.bgr_to_rgb'],
    ),
    Rule(
        r'data\.train_pipeline',
        expect=_pipeline_types,
        compute=_types_of('train_dataloader.dataset.pipeline'),
    ),
    Rule(
        r'data\.test_pipeline',
        expect=lambda v, r: _pipeline_types(v, r, test=True),
        compute=_types_of('test_dataloader.dataset.pipeline'),
    ),
    Rule(
        r'data\.train_pipeline\.Resize\.img_scale',
        ['train_dataloader.dataset.pipeline[type=Resize].scale'],
    ),
    Rule(
        r'data\.train_pipeline\.RandomFlip\.flip_ratio',
        ['train_dataloader.dataset.pipeline[type=RandomFlip].prob'],
    ),
    Rule(r'data\.train_pipeline\.(\w+)\.(\w+)', [r'train_dataloader.dataset.pipeline[type=\1].\2']),
    Rule(
        r'data\.test_pipeline\.MultiScaleFlipAug\.img_scale',
        [f'{split}_dataloader.dataset.pipeline[type=Resize].scale' for split in ('val', 'test')],
    ),
    Rule(
        r'data\.test_pipeline\.MultiScaleFlipAug\.flip',
        expect=lambda v, r: v,
        compute=lambda cfg, name, match: any(
            step['type'] == 'RandomFlip' for step in cfg['test_dataloader']['dataset']['pipeline']
        ),
    ),
    Rule(
        r'data\.test_pipeline\.Resize\.keep_ratio',
        [
            f'{split}_dataloader.dataset.pipeline[type=Resize].keep_ratio'
            for split in ('val', 'test')
        ],
    ),
    Rule(r'data\.test_pipeline\.Pad\.size_divisor', ['model.data_preprocessor.pad_size_divisor']),
    Rule(r'data\.test_pipeline\.Pad\.pad_val', ['model.data_preprocessor.pad_value']),
    Rule(r'data\.(train|val|test)\.(ann_file|img_prefix)', compute=_data_file),
    Rule(r'schedule\.optimizer\.(\w+)', [r'optim_wrapper.optimizer.\1']),
    Rule(r'schedule\.grad_clip', ['optim_wrapper.clip_grad']),
    Rule(
        r'schedule\.lr_config\.policy',
        expect=lambda v, r: (our_type(v, r), True),
        compute=lambda cfg, name, match: (
            resolve(cfg, 'param_scheduler[1].type'),
            resolve(cfg, 'param_scheduler[1].by_epoch'),
        ),
    ),
    Rule(r'schedule\.lr_config\.gamma', ['param_scheduler[1].gamma']),
    Rule(r'schedule\.lr_config\.warmup', ['param_scheduler[0].type'], our_type),
    Rule(
        r'schedule\.lr_config\.warmup_iters',
        expect=lambda v, r: (False, 0, v),
        compute=lambda cfg, name, match: tuple(
            resolve(cfg, f'param_scheduler[0].{key}') for key in ('by_epoch', 'begin', 'end')
        ),
    ),
    Rule(r'schedule\.lr_config\.warmup_ratio', ['param_scheduler[0].start_factor']),
    Rule(r'schedule\.lr_config\.step', ['param_scheduler[type=MultiStepLR].milestones']),
    Rule(r'schedule\.total_epochs', ['train_cfg.max_epochs']),
    Rule(r'schedule\.evaluation\.metric', ['val_evaluator.metric', 'test_evaluator.metric']),
    Rule(r'schedule\.checkpoint_config\.interval', ['default_hooks.checkpoint.interval']),
    Rule(r'schedule\.num_gpus', compute=lambda cfg, name, match: _gpus_and_images(cfg, name)[0]),
    Rule(
        r'schedule\.images_per_gpu', compute=lambda cfg, name, match: _gpus_and_images(cfg, name)[1]
    ),
    Rule(r'code\.' + HEADS + r'\.(delta|eps)', [r'model.\1.loss_cls.\2']),
    Rule(r'code\.' + HEADS + r'\.SB_weight_init', [r'model.\1.loss_cls.self_balance.init_weight']),
    Rule(
        r'code\.' + HEADS + r'\.localisation_error_normaliser',
        [r'model.\1.loss_cls.tau'],
        lambda value, recipe: 1 - value / 2,
    ),
    Rule(r'code\.' + HEADS + r'\.decode_wh_ratio_clip', compute=_decode_wh_ratio_clip),
    Rule(r'code\.' + HEADS + r'\.head_weight', [r'model.\1.loss_cls.loss_weight']),
    Rule(r'code\.' + HEADS + r'\.init_std', [r'model.\1.init_cfg.std']),
    Rule(r'code\.(bbox_head|rpn_head)\.cls_bias_init_prior', compute=_bias_prior),
    Rule(r'code\.' + HEADS + r'\.regression_averaging', compute=_regression_averaging),
]


@dataclass
class Paper:
    """The tables of one paper's record: its fields without counterpart, its deliberate
    differences (pattern -> (our path, our value, reason); ``{head}`` in our path is the head of
    the field, ``\\1`` a group of the pattern; our path None: the field's rule reads ours, which
    must be our value), when a deliberate entry applies, and its rules (the first whose pattern
    matches a field holds it)."""

    no_counterpart: Dict[str, Any]
    deliberate: Dict[str, Tuple[str, Any, str]]
    deliberate_when: Dict[str, Callable[[dict, str], bool]]
    rules: List[Rule]

    def reasons(self) -> set:
        """Every reason of the tables."""
        reasons = {
            entry[-1] if isinstance(entry, tuple) else entry
            for entry in self.no_counterpart.values()
        }
        return reasons | {reason for _, _, reason in self.deliberate.values()}


#: The aLRP Loss paper's record (configs/paper_recipes.json)
ALRP_PAPER = Paper(NO_COUNTERPART, DELIBERATE, DELIBERATE_WHEN, RULES)


# ---------------------------------------------------------------------------------------------
# our side: paths, class defaults


class Missing(KeyError):
    """Neither our config nor the class it builds has the key."""


SEGMENT = re.compile(r'^(\w+)(?:\[(\w+)=(\w+)\]|\[(\d+)\])?$')
REGISTRIES = (MODELS, TASK_UTILS, TRANSFORMS, HOOKS, METRICS, OPTIM_WRAPPERS)
#: the type a dict builds when it names none
IMPLICIT_TYPES = {'optim_wrapper': 'OptimWrapper'}


def class_of(type_name: str):
    for registry in REGISTRIES:
        cls = registry.get(type_name)
        if cls is not None:
            return cls
    return getattr(mmcv.ops, type_name, None)


def class_default(type_name: Optional[str], key: str):
    """The default of argument ``key`` of the class registered as ``type_name`` (searched
    along the class's bases, for arguments passed on through ``**kwargs``)."""
    cls = class_of(type_name) if type_name else None
    if cls is None:
        raise Missing(key)
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(key)
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    raise Missing(key)


def _step(node, part: str, parent_key: str):
    name, select_key, select_value, index = SEGMENT.match(part).groups()
    if isinstance(node, dict) and name in node:
        node = node[name]
    else:
        node = class_default(
            node.get('type', IMPLICIT_TYPES.get(parent_key)) if isinstance(node, dict) else None,
            name,
        )
    if select_key is not None:
        matches = [item for item in node if item.get(select_key) == select_value]
        if len(matches) != 1:
            raise Missing(part)
        node = matches[0]
    elif index is not None:
        node = node[int(index)]
    return node


def resolve(cfg: dict, path: str):
    """The value at ``path`` of our config, or the class default where the config has none."""
    node, parent_key = cfg, ''
    for part in path.split('.'):
        node = _step(node, part, parent_key)
        parent_key = SEGMENT.match(part).group(1)
    return node


def assign(cfg: dict, path: str, value) -> None:
    """Sets ``path`` of ``cfg`` to ``value`` (creating the last key), for the mutation test."""
    *parents, last = path.split('.')
    node = cfg
    for part in parents:
        name, select_key, select_value, index = SEGMENT.match(part).groups()
        node = node.setdefault(name, {}) if select_key is None and index is None else node[name]
        if select_key is not None:
            node = next(item for item in node if item.get(select_key) == select_value)
        elif index is not None:
            node = node[int(index)]
    name, select_key, _, index = SEGMENT.match(last).groups()
    assert select_key is None and index is None, path
    node[name] = value


def normalised(value):
    """Tuples as lists, recursively, so that (1, 4) equals the paper's JSON [1, 4]."""
    if isinstance(value, (list, tuple)):
        return [normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    return value


def same(a, b) -> bool:
    a, b = normalised(a), normalised(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


# ---------------------------------------------------------------------------------------------
# the check


@dataclass
class Check:
    """How one recipe field of one row is held: ``paths`` of our config that must read
    ``expected`` (or ``compute`` of the config), or ``reason`` for a field with no
    counterpart."""

    field: str
    expected: Any = None
    paths: Sequence[str] = ()
    compute: Optional[Callable[[dict, str], Any]] = None
    reason: Optional[str] = None


def _no_counterpart(recipe: dict, field: str, paper: Paper) -> Optional[str]:
    for pattern, entry in paper.no_counterpart.items():
        if re.fullmatch(pattern, field):
            when, reason = entry if isinstance(entry, tuple) else (None, entry)
            if when is None or when(recipe, field):
                return reason
    return None


def check_of(recipe: dict, field: str, paper: Paper = ALRP_PAPER) -> Check:
    """How our config must hold ``field`` of ``recipe`` (a row of ``paper``'s record)."""
    reason = _no_counterpart(recipe, field, paper)
    if reason is not None:
        return Check(field, reason=reason)
    for pattern, (path, ours, reason) in paper.deliberate.items():
        match = re.fullmatch(pattern, field)
        when = paper.deliberate_when.get(pattern)
        if match and (when is None or when(recipe, field)):
            if path is None:
                return dataclasses.replace(
                    _rule_check(recipe, field, paper), expected=ours, reason=reason
                )
            head = 'model.' + match.group(1) if match.groups() and match.group(1) else ''
            path = match.expand(path.format(head=head))
            return Check(field, expected=ours, paths=[path], reason=reason)
    return _rule_check(recipe, field, paper)


def _rule_check(recipe: dict, field: str, paper: Paper) -> Check:
    """How the first of ``paper``'s rules that applies to ``field`` holds it."""
    value = recipe[field]
    for rule in paper.rules:
        match = re.fullmatch(rule.pattern, field)
        if match and (rule.when is None or rule.when(recipe, field)):
            compute = rule.compute
            return Check(
                field,
                expected=rule.expect(value, recipe),
                paths=[match.expand(path) for path in rule.ours],
                compute=None
                if compute is None
                else (lambda cfg, name, compute=compute, match=match: compute(cfg, name, match)),
            )
    raise AssertionError(
        f'no rule for the recipe field {field}: map it in RULES or list it in '
        'NO_COUNTERPART with the reason'
    )


def mismatches(
    cfg: dict,
    name: str,
    recipe: dict,
    fields: Optional[Sequence[str]] = None,
    paper: Paper = ALRP_PAPER,
) -> List[str]:
    """Every recipe field (or those of ``fields``) that our config ``cfg`` (named ``name``)
    holds otherwise than ``paper``'s record, one line each."""
    found = []
    for field in fields if fields is not None else recipe:
        check = check_of(recipe, field, paper)
        if check.reason is not None and not check.paths and check.compute is None:
            continue
        try:
            values = (
                [check.compute(cfg, name)]
                if check.compute is not None
                else [resolve(cfg, path) for path in check.paths]
            )
        except Missing as error:
            found.append(f'{field}: our config has no {error}')
            continue
        for where, ours in zip(check.paths or ['(computed)'], values):
            if not same(ours, check.expected):
                found.append(
                    f'{field}: the paper has {recipe[field]!r} (ours should read '
                    f'{check.expected!r} at {where}), ours has {ours!r}'
                )
    return found
