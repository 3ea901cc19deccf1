"""How each field of the Rank & Sort Loss paper's recipes (``configs/rs_paper_recipes.json``, in
the names of the paper's mmdet 2.8 fork) reads in our MMDetection 3 configs: :data:`RS_PAPER`,
the tables of :class:`recipe_fields.Paper` for that record. Its rules come before the aLRP
record's (:data:`recipe_fields.RULES`), which hold the fields both papers share; its lists of
fields without counterpart and of deliberate differences are its own.
"""

import copy
import re
from typing import Any, Dict, List, Tuple

from mmdet.registry import MODELS

from .recipe_fields import (
    FORMATTING,
    HEADS,
    NO_COUNTERPART,
    RULES,
    Paper,
    Rule,
    _pipeline_types,
    resolve,
)

#: The fork's type names that our configs spell otherwise
RS_TYPE_NAMES = {
    'RankBasedRPNHead': 'RankingRPNHead',
    'RankBasedShared2FCBBoxHead': 'RankingBBoxHead',
    'RankBasedATSSHead': 'RankingATSSHead',
    'RankBasedPAAHead': 'RankingPAAHead',
    'RankBasedStandardRoIHead': 'StandardRoIHead',
    'RankBasedCascadeRoIHead': 'CascadeRoIHead',
    'RankBasedFCNMaskHead': 'RankingFCNMaskHead',
    'RankSortYOLACT': 'YOLACT',
    'RankSortYOLACTHead': 'RankingYOLACTHead',
    'RankSortYOLACTProtonet': 'RankingYOLACTProtonet',
    'step': 'MultiStepLR',
    'linear': 'LinearLR',
}

#: How the RS heads weigh and balance their box loss, in the words of the recipe file, by the
#: type of our head's ``loss_cls`` (the RankSortLoss tests prove ours).
BOX_LOSS = {
    'RankSortLoss': (
        'GIoU loss of each positive weighted by its detached highest sigmoid score, normalised '
        'by the sum of the weights, self-balanced every iteration to the value of '
        'loss_rank + loss_sort'
    ),
}

INERT_LOSS_CLS = (
    "the RS code's heads build this CrossEntropyLoss and never call it (it only makes their "
    'classifier sigmoid, checked as loss_cls.use_sigmoid); our loss_cls is the RankSortLoss '
    '(checked as rank_loss_type)'
)
#: How the RS Mask R-CNN and RS-YOLACT train their mask heads, by the types of the head whose
#: scores weigh the masks (our RoI head, our YOLACT box head) and of our mask head: whether their
#: DiceLoss activates (the FCN head passes logits, the protonet probabilities) and the loss in
#: the words of the recipe file (test_rs_mask_rcnn.py, test_ranking_fcn_mask_head.py and
#: test_ranking_yolact_protonet.py prove ours)
MASK_LOSS = {
    ('RankSortRoIHead', 'RankingFCNMaskHead'): (
        True,
        "1 - Dice of each positive's 28 x 28 mask, weighted by the detached score of its box as "
        'the box loss is, normalised by the sum of the weights, self-balanced every iteration '
        "to the value of the R-CNN's loss_rank + loss_sort",
    ),
    ('RankingYOLACTHead', 'RankingYOLACTProtonet'): (
        False,
        "1 - Dice of each positive anchor's mask (the sigmoid of the prototypes times its "
        'coefficients, zero outside its ground-truth box) against its ground-truth mask at the '
        "prototypes' size, weighted by the detached score of its box as the box loss is, "
        'normalised by the sum of the weights, self-balanced every iteration to the value of the '
        "box head's loss_rank + loss_sort",
    ),
}

INERT_LOSS_MASK = (
    "the RS code's mask head builds this CrossEntropyLoss and never calls it (its Dice loss is "
    'hard-coded); our loss_mask is that Dice loss (checked as code.roi_head.mask_head.*)'
)
OWN_GIOU = (
    'our heads take loss_bbox=None: their RankSortLoss computes the GIoU loss of the positives '
    'itself, weighted and self-balanced as code.*.box_loss says (checked there)'
)


def rs_type(value: str, recipe: dict) -> str:
    """Our type name of the fork's ``value``; its R-CNN head with a mask head is our
    RankSortRoIHead (mmdet's StandardRoIHead trains the box head of RS Faster R-CNN)."""
    if value == 'RankBasedStandardRoIHead' and 'model.roi_head.mask_head.type' in recipe:
        return 'RankSortRoIHead'
    return RS_TYPE_NAMES.get(value, value)


def _wrapped(recipe: dict, field: str = '') -> bool:
    """Whether the fork's training set is a dataset wrapper (LVIS's ClassBalancedDataset)."""
    return 'data.train.dataset.type' in recipe


def _train_dataset(cfg: dict) -> dict:
    """Our training dataset inside its wrappers (ClassBalancedDataset)."""
    dataset = cfg['train_dataloader']['dataset']
    while 'pipeline' not in dataset:
        dataset = dataset['dataset']
    return dataset


def _paa(recipe: dict, path: str) -> bool:
    return recipe.get('model.bbox_head.type') == 'RankBasedPAAHead' and path.startswith(
        'model.bbox_head.'
    )


def _multi_scale(recipe: dict) -> bool:
    return recipe.get('data.train_pipeline.Resize.multiscale_mode') == 'value'


def _train_types(value: List[str], recipe: dict) -> List[str]:
    """The fork's train steps as ours: a Resize choosing among scales is RandomChoiceResize."""
    if _multi_scale(recipe):
        value = ['RandomChoiceResize' if step == 'Resize' else step for step in value]
    return _pipeline_types(value, recipe)


def _test_types(value: List[str], recipe: dict) -> List[str]:
    """The fork's test steps as ours: MultiScaleFlipAug with flip=False runs its RandomFlip
    with no effect, so our test pipeline has none."""
    assert recipe['data.test_pipeline.MultiScaleFlipAug.flip'] is False
    return _pipeline_types([step for step in value if step != 'RandomFlip'], recipe, test=True)


def _pipeline_steps(pipeline: str):
    return lambda cfg, name, match: [step['type'] for step in resolve(cfg, pipeline)]


def _train_steps(cfg: dict, name: str, match: 're.Match') -> List[str]:
    return [step['type'] for step in _train_dataset(cfg)['pipeline']]


def _resize_mode(cfg: dict, name: str, match: 're.Match') -> str:
    """'value' for our RandomChoiceResize (one of the scales), 'range' for a Resize of one."""
    return 'value' if 'RandomChoiceResize' in _train_steps(cfg, name, match) else 'range'


def _wrapped_data_file(cfg: dict, name: str, match: 're.Match') -> str:
    """data_root + ann_file or data_root + the image folder of the wrapped training set."""
    dataset = cfg['train_dataloader']['dataset']['dataset']
    if match.group(1) == 'img_prefix':
        return dataset['data_root'] + dataset['data_prefix']['img']
    return dataset['data_root'] + dataset['ann_file']


def _mask_loss(cfg: dict, name: str, match: 're.Match') -> str:
    """MASK_LOSS of our heads (``model.<group 1>``: the R-CNN's or YOLACT's mask head), where
    their Dice loss is the sigmoid Dice of squares, activating as MASK_LOSS says, with the loss
    weight 1."""
    mask_head = f'model.{match.group(1)}'
    owner = 'model.roi_head' if mask_head.startswith('model.roi_head.') else 'model.bbox_head'
    heads = (resolve(cfg, f'{owner}.type'), resolve(cfg, f'{mask_head}.type'))
    if heads not in MASK_LOSS:
        return f'not known for {heads}'
    activate, loss = MASK_LOSS[heads]
    dice = resolve(cfg, f'{mask_head}.loss_mask')
    dice_of_squares = dice.get('type') == 'DiceLoss' and all(
        resolve(cfg, f'{mask_head}.loss_mask.{key}') == value
        for key, value in (
            ('use_sigmoid', True),
            ('activate', activate),
            ('naive_dice', False),
            ('loss_weight', 1.0),
        )
    )
    return loss if dice_of_squares else f'not the Dice of squares: {dice}'


def _share_roi_extractor(cfg: dict, name: str, match: 're.Match') -> bool:
    """mmdet's StandardRoIHead shares the box head's RoI extractor with the mask head exactly
    when it is given no mask_roi_extractor."""
    return resolve(cfg, 'model.roi_head').get('mask_roi_extractor') is None


def _dice_eps(cfg: dict, name: str, match: 're.Match'):
    """What the Dice loss of ``model.<group 1>`` adds to its denominator: DiceLoss
    (naive_dice=False) adds its eps to each of the two sums."""
    loss_mask = f'model.{match.group(1)}.loss_mask'
    if resolve(cfg, f'{loss_mask}.naive_dice'):
        return None
    return 2 * resolve(cfg, f'{loss_mask}.eps')


def _built_bbox_head(cfg: dict, name: str, match: 're.Match'):
    """An attribute of the box head (the cascade stage's) built from the config."""
    index, attribute = match.groups()
    head_cfg = cfg['model']['roi_head']['bbox_head']
    if index is not None:
        head_cfg = head_cfg[int(index)]
    return getattr(MODELS.build(copy.deepcopy(head_cfg)), attribute)


def _min_lr_ratio(cfg: dict, name: str, match: 're.Match') -> float:
    """The ratio to the lr at which our cosine annealing ends: its eta_min_ratio, else its
    eta_min (mmengine reads None as 0) over the optimizer's lr."""
    cosine = resolve(cfg, 'param_scheduler[type=CosineAnnealingLR]')
    if cosine.get('eta_min_ratio') is not None:
        return cosine['eta_min_ratio']
    return (cosine.get('eta_min') or 0.0) / resolve(cfg, 'optim_wrapper.optimizer.lr')


def _box_loss(cfg: dict, name: str, match: 're.Match') -> str:
    loss = resolve(cfg, f'model.{match.group(1)}.loss_cls.type')
    return BOX_LOSS.get(loss, f'not known for {loss}')


def _dense_sampler(cfg: dict, name: str, match: 're.Match') -> str:
    """The sampler of a dense head: the train config's, else PseudoSampler (ATSSHead's and
    PAAHead's default)."""
    sampler = cfg['model']['train_cfg'].get('sampler')
    return sampler['type'] if sampler else 'PseudoSampler'


def _has_quality_branch(cfg: dict, name: str, match: 're.Match') -> bool:
    """Whether the built head has a centerness / IoU branch (ATSSHead's atss_centerness)."""
    head = MODELS.build(copy.deepcopy(cfg['model']['bbox_head']))
    return hasattr(head, 'atss_centerness')


RS_NO_COUNTERPART: Dict[str, Any] = {
    r'model\.neck\.extra_convs_on_inputs': (
        'deprecated in mmdet 2.x and gone in mmdet 3; it changes nothing in these rows: '
        'add_extra_convs is False (P6 by max-pool) or a string ("on_output", "on_input"), which '
        'overrides it (checked as model.neck.add_extra_convs)'
    ),
    r'model\.' + HEADS + r'\.loss_cls\.(type|loss_weight|use_mask|reduction|class_weight)': (
        lambda recipe, path: (
            recipe[path.rsplit('.', 2)[0] + '.type'].startswith(('RankBased', 'RankSort'))
            and recipe[path.rsplit('.', 1)[0] + '.type'] == 'CrossEntropyLoss'
        ),
        INERT_LOSS_CLS,
    ),
    r'model\.' + HEADS + r'\.loss_bbox\..*': (
        lambda recipe, path: not _paa(recipe, path),
        OWN_GIOU,
    ),
    r'model\.roi_head\.mask_head\.loss_mask\..*': INERT_LOSS_MASK,
    r'model\.bbox_head\.loss_(cls|bbox)\.reduction': (
        _paa,
        "PAA scores its candidates with reduction_override='none', in the fork as in mmdet 3's "
        'PAAHead',
    ),
    r'(train_cfg\.rpn_proposal|test_cfg\.rpn)\.nms_across_levels': NO_COUNTERPART[
        r'(train_cfg\.rpn_proposal|test_cfg\.rpn)\.nms_across_levels'
    ],
    r'(train_cfg\.rpn_proposal|test_cfg\.rpn)\.max_num': (
        "the fork's RPN (mmdet 2.8) does not read max_num: it keeps the first nms_post "
        'proposals after the NMS of all levels (checked as max_per_img)'
    ),
    r'train_cfg\.rpn\.sampler\.(num|pos_fraction|neg_pos_ub|add_gt_as_proposals)': (
        "RandomSampler's arguments left in the fork's config; its PseudoSampler ignores them, as "
        'ours does'
    ),
    r'train_cfg\.rcnn(\[\d+\])?\.sampler\.(num|pos_fraction|neg_pos_ub)': (
        'KeepAllSampler keeps every proposal and takes no quota; the fork had RandomSampler keep '
        'them all by a quota of 1e10 (see train_cfg.rcnn.sampler.type)'
    ),
    r'model\.bbox_head\.score_weighting': (
        "an argument of the fork's QFLHead, the parent of its PAA head, which PAA does not use"
    ),
    r'data\.train_pipeline\.Resize\.multiscale_mode': (
        lambda recipe, path: recipe[path] == 'range',
        'mmdet 3\'s Resize takes one scale; "range" over the one scale given is that scale',
    ),
    r'data\.train_pipeline\.Resize\.ratio_range': (
        "mmdet 3's Resize and RandomChoiceResize have no ratio_range; the fork leaves it None"
    ),
    r'data\.(train|test)_pipeline\.(DefaultFormatBundle|ImageToTensor|Collect)\..*': FORMATTING,
    r'train_cfg\.neg_pos_ratio': (
        "the paper's YOLACT head never reads it (its use_ohem only picks the PseudoSampler, "
        'see model.bbox_head.use_ohem); ours mines no negatives either and takes none'
    ),
    r'schedule\.img_size': (
        "a variable of the paper's YOLACT config from which it writes its scales and its "
        "anchors' strides and centres (checked there)"
    ),
    r'schedule\.workflow': (
        "MMEngine's runner has no workflow: training is EpochBasedTrainLoop, with ValLoop every "
        "val_interval epochs (the fork's [('train', 1)] and evaluation interval, checked as "
        'schedule.evaluation.interval)'
    ),
}

RS_DELIBERATE: Dict[str, Tuple[str, Any, str]] = {
    r'train_cfg\.rcnn(\[\d+\])?\.sampler\.type': (
        r'model.train_cfg.rcnn\1.sampler.type',
        'KeepAllSampler',
        'the fork keeps every proposal (and ground-truth box) with a RandomSampler of quota '
        '1e10 ("R-CNN has a bug for PseudoSampler", its config says); KeepAllSampler keeps them '
        'all by definition, for any number of proposals, without drawing random numbers',
    ),
    r'model\.(rpn_head|bbox_head)\.reg_decoded_bbox': (
        '{head}.reg_decoded_bbox',
        True,
        'where the fork has False: it decodes the deltas and the encoded targets for the loss '
        '(its RPN and YOLACT head around a unit box at the origin, with their own delta2bbox; '
        'its ATSS head around the anchors), ours decodes the deltas around the anchors and takes '
        'the gt boxes themselves as targets. Decoding an encoded target gives its gt box back '
        '(the log-ratio clip of 16/1000, code.*.decode_wh_ratio_clip, acts only beyond a '
        '62-fold size ratio of box to anchor), and IoU and GIoU do not change under the '
        'per-axis scaling and shift between the two frames of the RPN and YOLACT head, so '
        'targets and losses are the same',
    ),
    r'model\.bbox_head\.use_ohem': (
        'model.bbox_head.use_ohem',
        False,
        "the paper's YOLACT head sets use_ohem only to take the PseudoSampler: it mines no hard "
        "negatives (neg_pos_ratio is never read); mmdet 3's YOLACTHead would mine them with "
        'use_ohem, so ours is False with the PseudoSampler of train_cfg (checked as '
        'code.bbox_head.sampler): every anchor enters the ranking, as in the paper',
    ),
    r'model\.mask_head\.max_masks_to_train': (
        'model.mask_head.max_masks_to_train',
        None,
        "the paper's protonet stores its config's 100 and never reads it: it trains the mask of "
        'every positive, as ours does with None',
    ),
    r'schedule\.checkpoint_config\.interval': (
        'default_hooks.checkpoint.interval',
        1,
        'where the paper saves a checkpoint every 5 epochs: ours every epoch, the last 3 kept '
        '(checkpoints do not change the training)',
    ),
    r'schedule\.num_gpus': (
        None,
        1,
        "where the paper's code states no GPU count for the row: 1 GPU x the 8 images a GPU of "
        "its config (checked as schedule.images_per_gpu), with the paper's lr 0.006",
    ),
}

_RULES: List[Rule] = [
    # the fork's PAA scores its candidates with its loss_cls and loss_bbox (Focal, GIoU)
    Rule(
        r'model\.bbox_head\.loss_(cls|bbox)\.(\w+)',
        [r'model.bbox_head.score_loss_\1.\2'],
        when=_paa,
    ),
    Rule(r'model\.((?:.+\.)?)type', [r'model.\1type'], rs_type),
    Rule(
        r'model\.' + HEADS + r'\.rank_loss_type',
        [r'model.\1.loss_cls.type'],
        lambda v, r: {'RankSort': 'RankSortLoss'}[v],
    ),
    Rule(r'model\.bbox_head\.delta', ['model.bbox_head.loss_cls.delta']),
    Rule(r'(train_cfg\.rpn_proposal|test_cfg\.rpn)\.nms_post', [r'model.\1.max_per_img']),
    Rule(
        r'model\.roi_head\.bbox_head(?:\[(\d+)\])?\.'
        r'(num_\w+_(?:convs|fcs)|with_avg_pool|with_cls|with_reg)',
        compute=_built_bbox_head,
    ),
    Rule(r'data\.train_pipeline', expect=_train_types, compute=_train_steps),
    Rule(
        r'data\.test_pipeline',
        expect=_test_types,
        compute=_pipeline_steps('test_dataloader.dataset.pipeline'),
    ),
    Rule(
        r'data\.train_pipeline\.Resize\.img_scale',
        ['train_dataloader.dataset.pipeline[type=RandomChoiceResize].scales'],
        when=lambda recipe, field: _multi_scale(recipe),
    ),
    Rule(
        r'data\.train_pipeline\.Resize\.keep_ratio',
        ['train_dataloader.dataset.pipeline[type=RandomChoiceResize].keep_ratio'],
        when=lambda recipe, field: _multi_scale(recipe),
    ),
    Rule(r'data\.train_pipeline\.Resize\.multiscale_mode', compute=_resize_mode),
    Rule(
        r'data\.(?:train|test)_pipeline\.Pad\.size_divisor',
        ['model.data_preprocessor.pad_size_divisor'],
    ),
    Rule(r'data\.(?:train|test)_pipeline\.Pad\.pad_val', ['model.data_preprocessor.pad_value']),
    Rule(r'schedule\.evaluation\.interval', ['train_cfg.val_interval']),
    Rule(r'model\.roi_head\.share_roi_extractor', compute=_share_roi_extractor),
    Rule(r'code\.roi_head\.max_masks_per_batch', ['model.roi_head.max_train_masks']),
    Rule(r'code\.((?:roi_head\.)?mask_head)\.mask_loss', compute=_mask_loss),
    Rule(r'code\.((?:roi_head\.)?mask_head)\.dice_eps', compute=_dice_eps),
    Rule(r'code\.mask_head\.mask_thr', ['model.test_cfg.mask_thr']),
    Rule(r'code\.mask_head\.segm_branch', ['model.mask_head.with_seg_branch']),
    Rule(r'schedule\.lr_config\.min_lr_ratio', compute=_min_lr_ratio),
    Rule(
        r'schedule\.total_epochs',
        [
            'train_cfg.max_epochs',
            'param_scheduler[type=CosineAnnealingLR].T_max',
            'param_scheduler[type=CosineAnnealingLR].end',
        ],
        when=lambda recipe, field: recipe['schedule.lr_config.policy'] == 'CosineAnnealing',
    ),
    Rule(r'schedule\.cudnn_benchmark', ['env_cfg.cudnn_benchmark']),
    Rule(r'data\.(val|test)\.type', [r'\1_dataloader.dataset.type']),
    Rule(r'data\.train\.(type|oversample_thr)', [r'train_dataloader.dataset.\1']),
    Rule(r'data\.train\.dataset\.type', ['train_dataloader.dataset.dataset.type']),
    Rule(r'data\.train\.dataset\.(ann_file|img_prefix)', compute=_wrapped_data_file),
    Rule(r'schedule\.log_config\.interval', ['default_hooks.logger.interval']),
    Rule(r'schedule\.dist_params\.backend', ['env_cfg.dist_cfg.backend']),
    Rule(r'schedule\.(log_level|load_from)', [r'\1']),
    Rule(
        r'schedule\.resume_from',
        expect=lambda value, recipe: value is not None,
        compute=lambda cfg, name, match: cfg.get('resume', False),
    ),
    Rule(r'code\.' + HEADS + r'\.box_loss', compute=_box_loss),
    Rule(r'code\.bbox_head\.sampler', compute=_dense_sampler),
    Rule(r'code\.bbox_head\.centerness_or_iou_branch', compute=_has_quality_branch),
    *RULES,
]


def _inside_wrapper(rule: Rule) -> Rule:
    """``rule`` for a training set inside a dataset wrapper (LVIS's ClassBalancedDataset)."""

    def when(recipe: dict, field: str) -> bool:
        return _wrapped(recipe) and (rule.when is None or rule.when(recipe, field))

    ours = [
        path.replace('train_dataloader.dataset.', 'train_dataloader.dataset.dataset.')
        for path in rule.ours
    ]
    return Rule(rule.pattern, ours, rule.expect, rule.compute, when)


def _pipeline_rule(rule: Rule) -> bool:
    return any(path.startswith('train_dataloader.dataset.pipeline') for path in rule.ours)


#: The rules, each of the training pipeline preceded by its form for a wrapped training set
RS_RULES: List[Rule] = [
    variant
    for rule in _RULES
    for variant in ([_inside_wrapper(rule), rule] if _pipeline_rule(rule) else [rule])
]


RS_DELIBERATE_WHEN = {
    r'model\.(rpn_head|bbox_head)\.reg_decoded_bbox': lambda recipe, path: recipe[path] is False,
    r'schedule\.checkpoint_config\.interval': lambda recipe, path: recipe[path] != 1,
    r'schedule\.num_gpus': lambda recipe, path: recipe[path] is None,
}

#: The Rank & Sort Loss paper's record (configs/rs_paper_recipes.json)
RS_PAPER = Paper(RS_NO_COUNTERPART, RS_DELIBERATE, RS_DELIBERATE_WHEN, RS_RULES)
