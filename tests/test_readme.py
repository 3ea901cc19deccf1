"""What a reader of the documents relies on: the README's first screen gives the two commands,
which are make targets that install first (and CI runs the second); every config, file and link
a document names exists; the model zoo links a README in every config folder, and those give
every paper row its results, model and log, and the commands that convert and evaluate it."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    path.relative_to(ROOT).as_posix()
    for path in [ROOT / 'README.md', *ROOT.glob('docs/*.md'), *ROOT.glob('configs/*/README.md')]
)
CONFIG_FOLDERS = sorted({path.parent.name for path in ROOT.glob('configs/*/*.py')} - {'_base_'})


def text(document: str) -> str:
    return (ROOT / document).read_text()


def fenced_blocks(markdown: str, language: str) -> list:
    return re.findall(rf'^```{language}\n(.*?)^```', markdown, re.S | re.M)


def test_first_screen_has_exactly_the_two_commands():
    screen = '\n'.join(text('README.md').splitlines()[:40])
    commands = [
        line.strip()
        for block in fenced_blocks(screen, 'bash')
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith('#')
    ]
    assert commands == ['make demo', 'make test']


def test_the_two_commands_are_make_targets_that_install_first():
    makefile = text('Makefile')
    prerequisites = dict(re.findall(r'^([\w-]+):([^=\n]*)$', makefile, re.M))
    for name in ('demo', 'test'):
        assert 'install' in prerequisites[name].split(), f'make {name} must install first'
    if shutil.which('make') is None:
        pytest.skip('no make on this machine')
    dry_run = subprocess.run(
        ['make', '-n', 'demo', 'test'], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert dry_run.returncode == 0, dry_run.stderr


def test_ci_runs_the_readme_test_command_and_nothing_else():
    lines = [line.strip() for line in text('.ci/run').splitlines()]
    commands = [
        line
        for line in lines
        if line and not line.startswith('#') and not line.startswith(('set ', 'cd '))
    ]
    assert commands == ['make test']


@pytest.mark.parametrize('document', DOCUMENTS)
def test_every_path_a_document_names_exists(document):
    """Repository paths in code spans and commands (a config, a tool, a requirements file);
    placeholders such as ``{CONFIG}`` and the folders the commands write are left out."""
    named = set(
        re.findall(
            r'(?<![\w/.{])((?:configs|tools|docs|requirements|alrp_core|mmdet_alrp|tests)'
            r'/[\w./-]*[\w/])',
            text(document),
        )
    )
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, missing


@pytest.mark.parametrize('document', DOCUMENTS)
def test_every_link_of_a_document_resolves(document):
    links = re.findall(r'\]\(([^)\s]+)\)', text(document))
    for link in links:
        if link.startswith(('https://', 'http://')):
            continue
        target = (ROOT / document).parent / link.split('#', 1)[0]
        assert target.exists(), f'{document}: {link}'


def model_zoo() -> str:
    readme = text('README.md')
    start = readme.index('## Model zoo')
    return readme[start : readme.index('\n## ', start + 1)]


def test_model_zoo_links_the_readme_of_every_config_folder():
    linked = re.findall(r'\]\(configs/([\w-]+)/README\.md\)', model_zoo())
    assert sorted(set(linked)) == CONFIG_FOLDERS


@pytest.mark.parametrize('folder', CONFIG_FOLDERS)
def test_every_config_folder_readme_has_results_and_citation(folder):
    readme = text(f'configs/{folder}/README.md')
    assert '## Results and models' in readme
    assert re.search(r'## Citation\n+```latex\n@\w+\{', readme)
    linked = set(re.findall(r'\]\(([\w.-]+\.py)\)', readme))
    configs = {path.name for path in (ROOT / 'configs' / folder).glob('*.py')}
    assert linked == configs


def test_config_readmes_give_every_paper_row_its_results_links_and_commands():
    """Per row of configs/paper_recipes.json: a table line in its folder's README with its
    config, the paper's AP / oLRP and its model and log links; the folder's README converts and
    evaluates a model of that folder once, with a placeholder for the config."""
    rows = json.loads(text('configs/paper_recipes.json'))['rows']
    for name, row in rows.items():
        folder, config = name.split('/')
        readme = text(f'configs/{folder}/README.md')
        (line,) = [line for line in readme.splitlines() if f']({config})' in line]
        results = row['results']
        ap = f'{results["ap_minival"]}'
        if 'ap_test_dev' in results:
            ap += f' / {results["ap_test_dev"]}'
        assert f' {ap} |' in line, (name, line)
        if 'olrp' in results:
            assert f' {results["olrp"]} |' in line, (name, line)
        assert f']({row["weights_url"]})' in line and f']({row["log_url"]})' in line
        (commands,) = fenced_blocks(readme, 'bash')
        convert, test = commands.splitlines()
        assert convert.startswith('python tools/model_converters/convert_paper_checkpoint.py ')
        assert convert.endswith(f' --config configs/{folder}/{{CONFIG}}.py')
        assert test.startswith(f'tools/dist_test.sh configs/{folder}/{{CONFIG}}.py ')


def test_the_config_snippet_builds_an_alrp_detector(tmp_path, mmdet_scope_quiet_logs):
    """The README's own-config snippet, as a user would save it, builds the detector it says."""
    from mmengine.config import Config

    from mmdet.registry import MODELS

    readme = text('README.md')
    section = readme[readme.index('## Use it in your own config') :]
    (snippet, *_) = re.findall(r'^```python\n(.*?)^```', section, re.S | re.M)
    path = tmp_path / 'my_alrp_retinanet.py'
    path.write_text(snippet)
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.init_cfg = None  # no download
    model = MODELS.build(cfg.model)
    assert type(model.bbox_head).__name__ == 'aLRPRetinaHead'
    assert type(model.bbox_head.loss_cls).__name__ == 'aLRPLoss'
    assert cfg.custom_hooks == [dict(type='SelfBalanceHook')]
