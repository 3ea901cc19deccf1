"""How CocoLRPMetric reports oLRP: the evaluator objects of its mmdet parent kept, the means over
classes and the json of every class's optimal threshold."""

import os.path as osp
from contextlib import contextmanager
from types import ModuleType
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
from mmengine.fileio import dump
from mmengine.logging import MMLogger

from ..functional import ClassOLRP

#: Components of oLRP -> their name in the results.
COMPONENTS = {'olrp': 'moLRP', 'loc': 'moLRP_loc', 'fp': 'moLRP_FP', 'fn': 'moLRP_FN'}


def mean_over_classes(values: Sequence[float]) -> float:
    """Mean of the values that are not NaN; -1 if there is none (LRP-Error's value)."""
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else -1.0


def class_entries(
    names: Sequence[str], cat_ids: Sequence[int], per_class: Sequence[ClassOLRP]
) -> List[dict]:
    """The json entries of the classes, by label: threshold and components, NaN as None."""
    return [
        dict(
            label=label,
            name=name,
            category_id=int(cat_id),
            threshold=_json(r.threshold),
            oLRP=_json(r.olrp),
            oLRP_loc=_json(r.loc),
            oLRP_FP=_json(r.fp),
            oLRP_FN=_json(r.fn),
            num_gts=r.num_gts,
        )
        for label, (name, cat_id, r) in enumerate(zip(names, cat_ids, per_class))
    ]


def thresholds_path(
    thresholds_file: Optional[str], outfile_prefix: Optional[str], logger: MMLogger
) -> Optional[str]:
    """``thresholds_file``, else ``<outfile_prefix>.olrp_thresholds.json``, else
    ``olrp_thresholds.json`` beside the logger's log file, else None."""
    if thresholds_file is not None:
        return thresholds_file
    if outfile_prefix is not None:
        return f'{outfile_prefix}.olrp_thresholds.json'
    if logger.log_file is not None:
        return osp.join(osp.dirname(logger.log_file), 'olrp_thresholds.json')
    return None


def write_thresholds(path: Optional[str], content: Dict, logger: MMLogger) -> None:
    """Write the thresholds json; a warning, not an error, if there is no path or it cannot be
    written."""
    if path is None:
        logger.warning('oLRP thresholds not written: give thresholds_file or outfile_prefix')
        return
    try:
        dump(content, path, file_format='json', indent=2)
    except OSError as error:
        logger.warning(f'oLRP thresholds not written to {path}: {error}')
        return
    logger.info(f'oLRP optimal thresholds of every class written to {path}')


def _json(value: float) -> Optional[float]:
    """A float for json: NaN becomes None (null)."""
    return None if np.isnan(value) else float(value)


@contextmanager
def keep_evaluations(module: ModuleType, names: Sequence[str], kept: List) -> Iterator[None]:
    """Within the block, every evaluator that ``module`` builds through the classes it names
    ``names`` is also put in ``kept``.

    mmdet's ``CocoMetric`` builds its evaluator (COCOeval or COCOevalMP) from names of its
    module and drops it when done; these names are wrapped for the
    block and restored after it. The wrapper is a function that returns an instance of the
    original class itself (a subclass would not pickle for COCOevalMP's worker processes).
    """
    originals = {name: getattr(module, name) for name in names}

    def keeping(cls):
        def build(*args, **kwargs):
            evaluation = cls(*args, **kwargs)
            kept.append(evaluation)
            return evaluation

        return build

    try:
        for name, cls in originals.items():
            setattr(module, name, keeping(cls))
        yield
    finally:
        for name, cls in originals.items():
            setattr(module, name, cls)
