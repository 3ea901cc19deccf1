"""The model-zoo records of MMDetection's conventions: a metafile.yml in every config folder, the
root model-index.yml importing them, one entry per config, with the paper's results, weights and
logs (configs/paper_recipes.json, configs/rs_paper_recipes.json) or, for the demo, the results
docs/demo.md gives; an entry with no results (a detector the paper has none for, a demo config
not measured) says why."""

import itertools
import json
import re
from pathlib import Path
from typing import Optional, Sequence

import modelindex
import pytest
import yaml

from .recipe_fields import check_of
from .test_paper_recipes import PAPERS

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / 'configs'
CONFIGS = sorted(
    path.relative_to(ROOT).as_posix()
    for path in CONFIG_DIR.rglob('*.py')
    if '_base_' not in path.relative_to(CONFIG_DIR).parts
)
#: the rows of the papers' records, and the record of each, keyed by our config
ROWS, RECORD_OF = {}, {}
for record in PAPERS:
    for name, row in json.loads((CONFIG_DIR / record).read_text())['rows'].items():
        ROWS[name], RECORD_OF[name] = row, record
#: the metrics as the metafiles and the README tables name them, and the keys of the records'
#: results (COCO minival, or the dataset of the row)
METRICS = {
    'box AP': 'ap_minival',
    'box oLRP': 'olrp',
    'mask AP': 'mask_ap_minival',
    'mask oLRP': 'mask_olrp',
}
FOLDERS = sorted({Path(config).parent.as_posix() for config in CONFIGS})
#: RS-SOLOv2's results, which no recipe record holds: mask AP and oLRP (COCO minival) of the
#: README of the RS paper's SOLOv2 code (kemaloksuz/RankSortLoss-Solov2), keyed by our config
RS_SOLOV2_RESULTS = {
    'rank_sort_loss/rank-sort-loss_solov2-light_r34_fpn_8xb2-ms-3x_coco.py': (32.6, 72.7),
    'rank_sort_loss/rank-sort-loss_solov2_r101_fpn_8xb2-ms-3x_coco.py': (39.7, 66.9),
}


def metafile(folder: str) -> dict:
    return yaml.safe_load((ROOT / folder / 'metafile.yml').read_text())


def entries():
    """(metafile folder, entry) of every model of every metafile."""
    return [(folder, model) for folder in FOLDERS for model in metafile(folder)['Models']]


def test_model_index_imports_the_metafile_of_every_config_folder():
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    assert sorted(index['Import']) == [f'{folder}/metafile.yml' for folder in FOLDERS]


def test_model_index_loads_without_errors():
    """The model-index package that mim uses reads it, and finds no error in it."""
    index = modelindex.load(str(ROOT / 'model-index.yml'))
    assert index.check(silent=True) == []
    assert len(index.models) == len(CONFIGS)


@pytest.mark.parametrize('config', CONFIGS)
def test_every_config_has_exactly_one_entry(config):
    matching = [model for _, model in entries() if model['Config'] == config]
    assert len(matching) == 1, f'{config}: {len(matching)} metafile entries'
    assert matching[0]['Name'] == Path(config).stem


@pytest.mark.parametrize('folder', FOLDERS)
def test_entries_name_existing_configs_of_their_folder_and_collection(folder):
    data = metafile(folder)
    collections = {collection['Name'] for collection in data['Collections']}
    for collection in data['Collections']:
        assert {'Training Data', 'Training Resources', 'Architecture'} <= set(
            collection['Metadata']
        )
        assert collection['Paper']['URL'].startswith('https://arxiv.org/abs/')
    for model in data['Models']:
        assert (ROOT / model['Config']).is_file(), model['Config']
        assert Path(model['Config']).parent.as_posix() == folder
        assert model['In Collection'] in collections


def results_of(model: dict) -> dict:
    """{(dataset, metric): value} of a metafile entry."""
    return {
        (result['Dataset'], metric): value
        for result in model['Results']
        for metric, value in result['Metrics'].items()
    }


@pytest.mark.parametrize('name', sorted(ROWS))
def test_paper_rows_carry_the_papers_results_weights_and_recipe(name):
    row = ROWS[name]
    (model,) = [model for _, model in entries() if model['Config'] == f'configs/{name}']
    dataset = row.get('dataset', 'COCO')
    expected = {
        (dataset, metric): row['results'][key]
        for metric, key in METRICS.items()
        if key in row['results']
    }
    if 'ap_test_dev' in row['results']:
        expected[('COCO test-dev', 'box AP')] = row['results']['ap_test_dev']
    assert results_of(model) == expected
    tasks = {result['Task'] for result in model['Results']}
    assert tasks == (
        {'Object Detection', 'Instance Segmentation'}
        if 'mask_ap_minival' in row['results']
        else {'Object Detection'}
    )
    assert (model['Weights'], model.get('Log')) == (row['weights_url'], row['log_url'])
    recipe = row['recipe']
    # the paper's GPUs, or ours where we deliberately differ (the paper states none)
    gpus = check_of(recipe, 'schedule.num_gpus', PAPERS[RECORD_OF[name]]).expected
    images = recipe['schedule.images_per_gpu']
    assert model['Metadata']['Epochs'] == recipe['schedule.total_epochs']
    assert model['Metadata']['Batch Size'] == gpus * images
    assert model['Metadata']['Training Resources'] == f'{gpus}x GPUs'
    assert model['Metadata']['Paper Config'] == row['paper_config']


def config_header(config: str) -> str:
    """The comment lines that open a config file, joined."""
    lines = (ROOT / config).read_text().splitlines()
    return ' '.join(
        line.lstrip('# ') for line in itertools.takewhile(lambda line: line.startswith('#'), lines)
    )


@pytest.mark.parametrize('folder', FOLDERS)
def test_entries_have_results_or_say_why_they_have_none(folder):
    """An entry has results, or a ``No Results`` reason and no weights or log; a COCO entry has
    results exactly when it is a row of the paper, and a config without says so at its top."""
    for model in metafile(folder)['Models']:
        has_results = bool(model.get('Results'))
        assert has_results != ('No Results' in model['Metadata']), model['Name']
        if folder != 'configs/demo':
            name = model['Config'][len('configs/') :]
            paper_row = name in ROWS or name in RS_SOLOV2_RESULTS
            assert has_results == paper_row, model['Name']
        if not has_results:
            assert 'Weights' not in model and 'Log' not in model, model['Name']
            header = config_header(model['Config'])
            assert (
                'NOT A ROW OF THE PAPER' in header and 'no weights' in header
                if folder != 'configs/demo'
                else 'no results' in header
            ), model['Config']


def demo_table(start: str, columns: Sequence[Optional[str]]) -> dict:
    """{config: {(dataset, metric): value in percent}} of the docs/demo.md table after ``start``:
    a row is the model, one number a column (named by ``columns``; None: not a metafile metric),
    the minutes, then the config."""
    text = (ROOT / 'docs' / 'demo.md').read_text()
    table = text[text.index(start) :]
    numbers = r' \| '.join([r'([\d.]+)'] * (len(columns) + 1))
    found = {}
    for line in table.splitlines():
        match = re.match(rf'\| [\w -]+ \| {numbers} \| `(configs/demo/[^`]+)` \|', line)
        if match:
            found[match.groups()[-1]] = {
                ('synthetic shapes', name): pytest.approx(100 * float(value))
                for name, value in zip(columns, match.groups())
                if name is not None
            }
        elif found:
            break
    return found


def test_demo_entries_carry_the_results_the_readme_measured():
    """The demo entries with results are the rows of docs/demo.md's `make demo-compare` table
    (box AP and oLRP) and `make demo-segm` table (box and mask AP and oLRP)."""
    box = ['box AP', None, None, 'box oLRP']
    measured = {
        **demo_table('`make demo-compare` (', box),
        **demo_table('`make demo-segm` (', box + ['mask AP', None, None, 'mask oLRP']),
    }
    demo = [model for folder, model in entries() if folder == 'configs/demo' and 'Results' in model]
    assert sorted(measured) == sorted(model['Config'] for model in demo)
    assert len(measured) == 5
    for model in demo:
        assert results_of(model) == measured[model['Config']], model['Name']


def readme_table_rows(text: str) -> list:
    """Each line of the markdown tables of ``text`` below the header, as {header: cell}."""
    found, header = [], None
    for line in text.splitlines():
        if not line.startswith('|'):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip('|').split(' | ')]
        if header is None:
            header = cells
        elif not set(line.strip()) <= set('|:- '):
            found.append(dict(zip(header, cells)))
    return found


def test_rank_sort_loss_readme_table_is_the_record():
    """configs/rank_sort_loss/README.md's tables of the recorded rows: one line a row of
    configs/rs_paper_recipes.json, with the results of its columns (box AP and oLRP, and mask AP
    and oLRP where the table has them: '-' where the paper has none; every result of the row),
    its config and the paper's model and log (where it has one)."""
    rows = json.loads((CONFIG_DIR / 'rs_paper_recipes.json').read_text())['rows']
    text = (CONFIG_DIR / 'rank_sort_loss' / 'README.md').read_text()
    seen = []
    for line in readme_table_rows(text):
        if 'Config' not in line or 'solov2' in line['Config']:
            continue
        config = re.search(r'\[config\]\(([^)]+)\)', line['Config']).group(1)
        row = rows[f'rank_sort_loss/{config}']
        seen.append(config)
        columns = [header for header in METRICS if header in line]
        assert {
            METRICS[header]: None if line[header] == '-' else float(line[header])
            for header in columns
        } == {METRICS[header]: row['results'].get(METRICS[header]) for header in columns}
        assert set(row['results']) <= {METRICS[header] for header in columns}
        assert f'[model]({row["weights_url"]})' in line['Download']
        assert ('[log](' in line['Download']) == (row['log_url'] is not None)
        if row['log_url'] is not None:
            assert f'[log]({row["log_url"]})' in line['Download']
    assert sorted(seen) == sorted(Path(name).name for name in rows)


@pytest.mark.parametrize('name', sorted(RS_SOLOV2_RESULTS))
def test_rs_solov2_entries_carry_the_papers_mask_results_and_our_recipe(name):
    """The RS-SOLOv2 entries: the paper's mask AP and oLRP, no weights or log (none released),
    and the batch and epochs of their configs (mmdet 3.3's SOLOv2 recipe, 8 GPUs x 2 images)."""
    from mmengine.config import Config

    (model,) = [model for _, model in entries() if model['Config'] == f'configs/{name}']
    mask_ap, mask_olrp = RS_SOLOV2_RESULTS[name]
    assert results_of(model) == {('COCO', 'mask AP'): mask_ap, ('COCO', 'mask oLRP'): mask_olrp}
    assert 'Weights' not in model and 'Log' not in model
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    assert model['Metadata']['Training Resources'] == '8x GPUs' and '_8xb2-' in name
    assert model['Metadata']['Batch Size'] == 8 * cfg.train_dataloader.batch_size == 16
    assert model['Metadata']['Epochs'] == cfg.train_cfg.max_epochs == 36


def test_rank_sort_loss_readme_solov2_table_has_the_papers_mask_results():
    """configs/rank_sort_loss/README.md's RS-SOLOv2 table: one line a config, with the paper's
    mask AP and oLRP."""
    text = (CONFIG_DIR / 'rank_sort_loss' / 'README.md').read_text()
    found = {}
    for line in readme_table_rows(text):
        if 'solov2' in line.get('Config', ''):
            config = re.search(r'\[config\]\(([^)]+)\)', line['Config']).group(1)
            found[f'rank_sort_loss/{config}'] = (float(line['mask AP']), float(line['mask oLRP']))
    assert found == RS_SOLOV2_RESULTS
