"""Converts a checkpoint released with the aLRP Loss paper (MMDetection 2.1 / mmcv 0.6) or the Rank
& Sort Loss paper (its MMDetection 2.8 fork / mmcv 1.2) into one that our configs load in
MMDetection 3 with no missing or unexpected key.

    python tools/model_converters/convert_paper_checkpoint.py IN OUT [--config CONFIG]

What changes: the Rank & Sort Loss paper's models keep every key (our RankingRPNHead,
RankingBBoxHead, RankingATSSHead, RankingPAAHead, RankingFCNMaskHead, RankingYOLACTHead and
RankingYOLACTProtonet have its heads' layers and names; its R-CNN classifiers have no background
column, as ours; its Mask R-CNN's mask head is mmdet's FCNMaskHead, whose keys mmdet 3 keeps). Of
the aLRP Loss paper's: FoveaBox's classifier and regressor are named ``conv_cls`` / ``conv_reg`` in
mmdet 3 (``fovea_cls`` / ``fovea_reg`` in 2.1); the paper's aLRP RetinaNet head on ATSS's targets is
our ``aLRPATSSHead``, whose ``retina_cls`` / ``retina_reg`` are ``atss_cls`` / ``atss_reg``; the
aLRP heads get their self-balance buffers (``<head>.loss_cls.self_balance.*``), which the paper kept
outside the state dict (SB at its initial value: it only weighs training losses, prediction does not
use it). Of both: ``meta.CLASSES`` becomes ``meta.dataset_meta.classes``, the other meta fields of
mmdet 2.x are kept under ``meta.paper_meta``; the optimizer state is dropped. Every other key and
every weight is kept as it is (the aLRP R-CNN classifier keeps its ``num_classes`` outputs: it has
no background column).

IN is read with torch's weights-only unpickler (no code of the file runs); a global outside
the types torch and :mod:`mmdet_alrp.engine.checkpoint` allow makes it refuse, naming the
global. With ``--config`` the result is checked against the model that the config builds:
a checkpoint of another architecture, or with keys missing, is refused with the keys at fault,
and so is one whose heads (named in the ``config`` text that mmdet 2.x keeps in the meta) are
not the config's (an aLRP Loss checkpoint for a Rank & Sort Loss config, an ATSS head for a PAA
config: their keys are alike). Without it, the aLRP heads are found from that config text.
"""

import argparse
import copy
import os
import os.path as osp
import pickle
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdet_alrp  # noqa: F401  (registers our modules)
from mmdet.registry import MODELS
from mmdet_alrp.engine.checkpoint import UnsafeCheckpointError, load_from_local
from mmdet_alrp.models.losses import SelfBalance

#: mmdet 2.1 key -> mmdet 3 key, by prefix
RENAMED_PREFIXES = {
    'bbox_head.fovea_cls.': 'bbox_head.conv_cls.',
    'bbox_head.fovea_reg.': 'bbox_head.conv_reg.',
}
#: and for the paper's RetinaNet head on ATSS's targets (our aLRPATSSHead)
ATSS_RENAMED_PREFIXES = {
    'bbox_head.retina_cls.': 'bbox_head.atss_cls.',
    'bbox_head.retina_reg.': 'bbox_head.atss_reg.',
}
#: the paper's aLRP head types and where their modules sit in the model
ALRP_HEAD_PREFIXES = {
    'aLRPLossRetinaHead': 'bbox_head.',
    'aLRPLossFoveaHead': 'bbox_head.',
    'aLRPLossRPNHead': 'rpn_head.',
    'aLRPLossShared2FCBBoxHead': 'roi_head.bbox_head.',
}
#: the papers' head types (mmdet 2.1, the RS paper's mmdet 2.8 fork) -> ours
PAPER_HEAD_TYPES = {
    'RPNHead': 'RPNHead',
    'Shared2FCBBoxHead': 'Shared2FCBBoxHead',
    'FoveaHead': 'FoveaHead',
    'APLossRetinaHead': 'APLossRetinaHead',
    'APLossFoveaHead': 'APLossFoveaHead',
    'aLRPLossRetinaHead': 'aLRPRetinaHead',
    'aLRPLossFoveaHead': 'aLRPFoveaHead',
    'aLRPLossRPNHead': 'aLRPRPNHead',
    'aLRPLossShared2FCBBoxHead': 'aLRPBBoxHead',
    'RankBasedRPNHead': 'RankingRPNHead',
    'RankBasedShared2FCBBoxHead': 'RankingBBoxHead',
    'RankBasedATSSHead': 'RankingATSSHead',
    'RankBasedPAAHead': 'RankingPAAHead',
    'RankSortYOLACTHead': 'RankingYOLACTHead',
    'FCNMaskHead': 'FCNMaskHead',
    'RankBasedFCNMaskHead': 'RankingFCNMaskHead',
}
SELF_BALANCE = 'loss_cls.self_balance.'
MAX_KEYS_SHOWN = 8


class ConversionError(ValueError):
    """The input is not a checkpoint of the paper that the config's model can load."""


def _some(keys: Sequence[str]) -> str:
    keys = sorted(keys)
    shown = ', '.join(keys[:MAX_KEYS_SHOWN])
    return shown + (f' and {len(keys) - MAX_KEYS_SHOWN} more' if len(keys) > MAX_KEYS_SHOWN else '')


def load_paper_checkpoint(filename: str) -> dict:
    """The checkpoint ``filename``, read with the weights-only unpickler.

    Raises:
        ConversionError: the file is missing, not a torch checkpoint, holds globals that are not
            allowed, or is not an mmdet 2.x checkpoint (a dict with a ``state_dict`` of tensors,
            ``meta.mmdet_version`` 2.x where there is one).
    """
    try:
        checkpoint = load_from_local(filename, map_location='cpu')
    except FileNotFoundError as error:
        raise ConversionError(str(error)) from error
    except UnsafeCheckpointError as error:
        raise ConversionError(f'refused to load: {error}') from error
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        raise ConversionError(
            f'{filename} is not a PyTorch checkpoint that loads without '
            f'running code ({type(error).__name__}: {error})'
        ) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get('state_dict'), dict):
        raise ConversionError(
            f"{filename} is not an MMDetection checkpoint: it has no 'state_dict' dict"
        )
    not_tensors = [k for k, v in checkpoint['state_dict'].items() if not torch.is_tensor(v)]
    if not_tensors:
        raise ConversionError(
            f'{filename}: the state_dict holds values that are not tensors ({_some(not_tensors)})'
        )
    meta = checkpoint.get('meta') or {}
    version = str(meta.get('mmdet_version', ''))
    if version and not version.startswith('2.'):
        raise ConversionError(
            f'{filename} was written by mmdet {version}; this tool converts '
            "the paper's mmdet 2.x checkpoints (mmdet 3 ones load as they are)"
        )
    if 'dataset_meta' in meta or 'mmengine_version' in meta:
        raise ConversionError(f'{filename} is already an MMEngine (mmdet 3) checkpoint')
    return checkpoint


def renamed(
    state_dict: Dict[str, torch.Tensor], atss: bool = False
) -> 'OrderedDict[str, torch.Tensor]':
    """The state dict under mmdet 3's names (:data:`RENAMED_PREFIXES`, and
    :data:`ATSS_RENAMED_PREFIXES` for an ``atss`` RetinaNet head)."""
    prefixes = dict(RENAMED_PREFIXES, **(ATSS_RENAMED_PREFIXES if atss else {}))
    out = OrderedDict()
    for key, value in state_dict.items():
        for old, new in prefixes.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def _types(paper_config: str) -> set:
    """The type names of the config text that mmdet 2.x saved in the meta."""
    return set(re.findall(r"type=['\"](\w+)['\"]", paper_config))


def atss_retina_head(paper_config: str) -> bool:
    """Whether the config text that mmdet 2.1 saved in the meta has the aLRP RetinaNet head on
    ATSS's targets."""
    return {'aLRPLossRetinaHead', 'ATSSAssigner'} <= _types(paper_config)


def alrp_head_prefixes(paper_config: str) -> List[str]:
    """Where the aLRP heads sit, from the config text that mmdet 2.1 saved in the meta."""
    types = _types(paper_config)
    return sorted({prefix for head, prefix in ALRP_HEAD_PREFIXES.items() if head in types})


def paper_head_types(paper_config: str) -> List[str]:
    """Our names of the heads of the config text saved in the meta (sorted; empty where it
    names none of :data:`PAPER_HEAD_TYPES`)."""
    ours = {PAPER_HEAD_TYPES[head] for head in _types(paper_config) if head in PAPER_HEAD_TYPES}
    if atss_retina_head(paper_config):  # the paper's RetinaNet head on ATSS's targets
        ours = (ours - {'aLRPRetinaHead'}) | {'aLRPATSSHead'}
    return sorted(ours)


def config_head_types(model_cfg: dict) -> List[str]:
    """The head types of our model config (RPN, R-CNN box heads of every stage, mask head, dense
    head)."""
    heads = [model_cfg[key] for key in ('rpn_head', 'bbox_head') if model_cfg.get(key)]
    if model_cfg.get('roi_head'):
        bbox_head = model_cfg['roi_head']['bbox_head']
        heads += bbox_head if isinstance(bbox_head, list) else [bbox_head]
        if model_cfg['roi_head'].get('mask_head'):
            heads.append(model_cfg['roi_head']['mask_head'])
    return sorted({head['type'] for head in heads})


def build_model(cfg: Config):
    """The model of ``cfg`` without pretrained weights (nothing is downloaded)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.init_cfg = None
    model_cfg.backbone.init_cfg = None
    return MODELS.build(model_cfg)


def check_against(
    state_dict: Dict[str, torch.Tensor], expected: Dict[str, torch.Tensor], config: str
) -> None:
    """Raises :class:`ConversionError` unless ``state_dict`` has exactly the keys and shapes of
    ``expected`` (the state dict of the model of ``config``)."""
    unexpected = set(state_dict) - set(expected)
    missing = set(expected) - set(state_dict)
    reshaped = [
        f'{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}'
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if unexpected or reshaped:
        problems = []
        if unexpected:
            problems.append(f'keys the model does not have: {_some(unexpected)}')
        if reshaped:
            problems.append(f'shapes that differ (checkpoint vs model): {_some(reshaped)}')
        if missing:
            problems.append(f'keys it lacks: {_some(missing)}')
        raise ConversionError(
            f'the checkpoint is of another architecture than {config}: ' + '; '.join(problems)
        )
    if missing:
        raise ConversionError(
            f'the checkpoint lacks keys of the model of {config}: {_some(missing)}'
        )


def check_heads(paper_heads: List[str], config_heads: List[str], config: str) -> None:
    """Raises :class:`ConversionError` where the heads of the checkpoint (``paper_heads``, our
    names; none known: nothing to check) are not ``config``'s."""
    if paper_heads and paper_heads != config_heads:
        raise ConversionError(
            f"the checkpoint's heads are {', '.join(paper_heads)} (in our names, from the config "
            f'its meta holds), those of {config} {", ".join(config_heads)}: it is a model of '
            'another loss or detector, whose keys happen to fit'
        )


def convert(checkpoint: dict, config: Optional[str] = None) -> dict:
    """The mmdet 3 checkpoint of the paper's ``checkpoint`` (see the module's docstring).

    Raises:
        ConversionError: with ``config``, the result does not fit the config's model exactly.
    """
    meta = dict(checkpoint.get('meta') or {})
    paper_config = str(meta.get('config', ''))
    if config is not None:
        cfg = Config.fromfile(config)
        expected = build_model(cfg).state_dict()
        atss = any(
            key.startswith(new) for key in expected for new in ATSS_RENAMED_PREFIXES.values()
        )
        state_dict = renamed(checkpoint['state_dict'], atss)
        for key, value in expected.items():  # the self-balance buffers, at their initial values
            if SELF_BALANCE in key and key not in state_dict:
                state_dict[key] = value.clone()
        check_against(state_dict, expected, config)
        check_heads(paper_head_types(paper_config), config_head_types(cfg.model), config)
    else:
        state_dict = renamed(checkpoint['state_dict'], atss_retina_head(paper_config))
        for prefix in alrp_head_prefixes(paper_config):
            for name, value in SelfBalance().state_dict().items():
                state_dict.setdefault(f'{prefix}{SELF_BALANCE}{name}', value)
    classes = meta.pop('CLASSES', None)
    out_meta = dict(
        epoch=meta.get('epoch'),
        iter=meta.get('iter'),
        paper_meta=meta,
        converted_by='tools/model_converters/convert_paper_checkpoint.py',
    )
    if classes is not None:
        out_meta['dataset_meta'] = dict(classes=tuple(classes))
    return dict(meta=out_meta, state_dict=state_dict)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a checkpoint of the aLRP Loss paper (mmdet 2.1) or the Rank & Sort '
        'Loss paper (mmdet 2.8) to mmdet 3'
    )
    parser.add_argument('input', metavar='IN', help="the paper's checkpoint (.pth)")
    parser.add_argument('output', metavar='OUT', help='the converted checkpoint to write')
    parser.add_argument(
        '--config',
        help='our config of the same row: the result is checked '
        'against its model (no missing, unexpected or reshaped key)',
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.config is not None and not osp.isfile(args.config):
        sys.exit(f'convert_paper_checkpoint: no config file {args.config}')
    try:
        converted = convert(load_paper_checkpoint(args.input), args.config)
    except ConversionError as error:
        sys.exit(f'convert_paper_checkpoint: {error}')
    os.makedirs(osp.dirname(osp.abspath(args.output)), exist_ok=True)
    torch.save(converted, args.output)
    print(
        f'wrote {args.output}: {len(converted["state_dict"])} tensors'
        + (f', checked against {args.config}' if args.config else '')
    )


if __name__ == '__main__':
    main()
