"""Pictures and a table of training runs: MMEngine's logged scalars as curves, detections (boxes,
and masks where given) beside the ground truth, final metrics side by side.

Figures are drawn on :class:`matplotlib.figure.Figure` objects and saved with the Agg canvas, so
no display and no pyplot state are involved.
"""

import glob
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

#: Panels of :func:`plot_training_curves`: (title, x-axis, y scale,
#: [(scalar key, line style, label)]).
CURVE_PANELS = (
    ('training loss (sum of the loss terms)', 'iteration', 'linear', [('loss', '-', '')]),
    (
        'ranking loss parts (aLRP Loss; RS Loss)',
        'iteration',
        'linear',
        [
            ('alrp_cls', '-', 'classification'),
            ('alrp_loc', '--', 'localisation'),
            ('loss_rank', '-', 'ranking'),
            ('loss_sort', ':', 'sorting'),
            ('giou_error', '--', 'GIoU error (before SB)'),
        ],
    ),
    (
        'self-balance weight SB (aLRP Loss: its state; RS Loss: of the iteration)',
        'iteration',
        'log',
        [('sb_weight', '-', '')],
    ),
    (
        'COCO AP on the val set',
        'epoch',
        'linear',
        [
            ('coco/bbox_mAP', '-o', 'AP'),
            ('coco/bbox_mAP_50', '--s', 'AP50'),
            ('coco/segm_mAP', ':^', 'mask AP'),
        ],
    ),
)


def latest_run_file(run_dir: str, name: str) -> str:
    """The file ``name`` of the latest run logged in ``run_dir``: ``run_dir/<timestamp>/name``
    with the newest timestamp (the Runner names each run's log directory by its start time).

    Raises:
        FileNotFoundError: no run in ``run_dir`` has that file.
    """
    files = sorted(glob.glob(osp.join(run_dir, '*', name)))
    if not files:
        raise FileNotFoundError(f'no */{name} under {run_dir}')
    return files[-1]


def read_scalars(run_dir: str) -> Tuple[List[dict], List[dict]]:
    """The training and validation records of the latest run logged in ``run_dir``.

    MMEngine's ``LocalVisBackend`` writes one json dict a line to
    ``run_dir/<timestamp>/vis_data/scalars.json``: training records carry ``loss``, validation
    records the metrics (``coco/...``); ``step`` is the iteration, or the epoch for validation
    under an epoch-based loop.

    Returns:
        tuple[list[dict], list[dict]]: training records, validation records, in logged order.
    """
    with open(latest_run_file(run_dir, osp.join('vis_data', 'scalars.json'))) as f:
        records = [json.loads(line) for line in f if line.strip()]
    train = [r for r in records if 'loss' in r]
    val = [r for r in records if any(key.startswith('coco/') for key in r)]
    return train, val


def plot_training_curves(runs: Dict[str, str], out_file: str) -> str:
    """Training curves of one or more runs, overlaid, one colour a run (see
    :data:`CURVE_PANELS`): the total loss; the parts of a ranking loss (aLRP Loss's
    classification and localisation, RS Loss's ranking, sorting and GIoU error); the SB weight
    (aLRP Loss's, or RS Loss's of each iteration); AP / AP50 of every evaluation. A panel no run
    has data for says so.

    Args:
        runs (dict[str, str]): run name -> its work directory.
        out_file (str): path of the PNG.

    Returns:
        str: ``out_file``.
    """
    logs = {name: read_scalars(run_dir) for name, run_dir in runs.items()}
    fig = Figure(figsize=(12, 8), layout='constrained')
    for ax, (title, x_key, y_scale, series) in zip(fig.subplots(2, 2).flat, CURVE_PANELS):
        drawn = False
        for colour, (name, (train, val)) in enumerate(logs.items()):
            records = val if x_key == 'epoch' else train
            for key, style, label in series:
                points = [(r['step'], r[key]) for r in records if key in r]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(
                        xs,
                        ys,
                        style,
                        color=f'C{colour}',
                        markersize=4,
                        label=' '.join(filter(None, (name, label))),
                    )
                    drawn = True
        ax.set_title(title)
        ax.set_xlabel(x_key)
        ax.grid(alpha=0.3)
        if drawn:
            ax.set_yscale(y_scale)
            ax.legend(fontsize='small')
        else:
            ax.text(
                0.5,
                0.5,
                'not logged by these runs',
                ha='center',
                va='center',
                transform=ax.transAxes,
                color='grey',
            )
    return _save(fig, out_file)


def plot_predictions(
    samples: Sequence[dict],
    class_names: Sequence[str],
    palette: Sequence[Sequence[int]],
    out_file: str,
    caption: str = '',
) -> str:
    """A grid of images: one column per image, its ground truth in the first row, each model's
    detections (as given: filter them first) in the next rows; boxes with their class (and
    score), and masks where given, filled with their class's colour (:func:`overlay_masks`)
    over the image in grey (the mean of its channels).

    Args:
        samples (list[dict]): per image, ``image`` (H, W, 3) uint8 RGB, ``gt_bboxes`` (N, 4)
            x1y1x2y2, ``gt_labels`` (N, ), optionally ``gt_masks`` (N, H, W) bool, and
            ``predictions``, a dict of model name -> ``(bboxes (K, 4), scores (K, ), labels
            (K, ))`` or ``(bboxes, scores, labels, masks (K, H, W))``. Every image has the same
            models.
        class_names (list[str]): name of every label.
        palette (list[tuple]): RGB colour (0-255) of every label.
        out_file (str): path of the PNG.
        caption (str): title of the figure. Defaults to none.

    Returns:
        str: ``out_file``.
    """
    rows = ['ground truth'] + list(samples[0]['predictions'])
    fig = Figure(figsize=(3 * len(samples), 3 * len(rows) + 0.4), layout='constrained')
    fig.suptitle(caption, fontsize='medium')
    axes = fig.subplots(len(rows), len(samples), squeeze=False)
    for column, sample in zip(axes.T, samples):
        truth = (sample['gt_bboxes'], None, sample['gt_labels'])
        if 'gt_masks' in sample:
            truth += (sample['gt_masks'],)
        drawn = [truth] + [sample['predictions'][name] for name in rows[1:]]
        for ax, title, (bboxes, scores, labels, *masks) in zip(column, rows, drawn):
            image = sample['image']
            if masks:
                # over the image in grey, so that colour marks the masks alone
                grey = np.rint(image.mean(axis=-1, keepdims=True)).astype(np.uint8)
                image = overlay_masks(grey.repeat(3, axis=-1), masks[0], labels, palette)
            # pixel (i, j) covers [j, j + 1] x [i, i + 1], as in the boxes' coordinates
            ax.imshow(image, extent=(0, image.shape[1], image.shape[0], 0))
            ax.set_title(title, fontsize='small')
            ax.set_axis_off()
            for index, (box, label) in enumerate(zip(np.asarray(bboxes), np.asarray(labels))):
                colour = np.asarray(palette[int(label)]) / 255
                x1, y1, x2, y2 = box
                ax.add_patch(
                    Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, linewidth=1.5)
                )
                text = class_names[int(label)]
                if scores is not None:
                    text += f' {scores[index]:.2f}'
                ax.text(
                    x1,
                    y1,
                    text,
                    fontsize=6,
                    color='white',
                    va='bottom',
                    bbox=dict(facecolor=colour, alpha=0.7, pad=0.5, linewidth=0),
                )
    return _save(fig, out_file)


def overlay_masks(
    image: np.ndarray,
    masks: np.ndarray,
    labels: Sequence[int],
    palette: Sequence[Sequence[int]],
    alpha: float = 0.6,
) -> np.ndarray:
    """The image with every mask's pixels blended towards its class's colour, in order (a later
    mask over an earlier one): ``(1 - alpha) * pixel + alpha * colour``, rounded.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        masks (np.ndarray): (K, H, W) bool.
        labels (list[int]): (K, ) the masks' classes.
        palette (list[tuple]): RGB colour (0-255) of every label.
        alpha (float): opacity of the colour, in [0, 1]. Defaults to 0.6.

    Returns:
        np.ndarray: a new (H, W, 3) uint8 RGB image.

    Raises:
        ValueError: the masks are not (K, H, W) of the image's size, one label a mask, or
            ``alpha`` is outside [0, 1].
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(
            f'masks must be (K, {image.shape[0]}, {image.shape[1]}) like the image, '
            f'got {masks.shape}'
        )
    if len(labels) != len(masks):
        raise ValueError(f'{len(masks)} masks but {len(labels)} labels')
    if not 0 <= alpha <= 1:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    blended = image.astype(np.float64)
    for mask, label in zip(masks, labels):
        colour = np.asarray(palette[int(label)], dtype=np.float64)
        blended[mask] = (1 - alpha) * blended[mask] + alpha * colour
    return np.rint(blended).astype(np.uint8)


def format_table(rows: Dict[str, Dict[str, float]], columns: Sequence[str]) -> str:
    """A plain-text table: one row per run, the given columns (a missing value shows as
    ``-``, floats with 3 decimals)."""
    header = ['model'] + list(columns)
    body = [
        [name] + [_cell(values.get(column)) for column in columns] for name, values in rows.items()
    ]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]

    def line(cells: List[str]) -> str:
        return '| ' + ' | '.join(c.ljust(w) for c, w in zip(cells, widths)) + ' |'

    rule = '+-' + '-+-'.join('-' * w for w in widths) + '-+'
    return '\n'.join([rule, line(header), rule] + [line(cells) for cells in body] + [rule])


def _cell(value) -> str:
    if value is None:
        return '-'
    return f'{value:.3f}' if isinstance(value, float) else str(value)


def _save(fig: Figure, out_file: str) -> str:
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=100)
    return out_file
