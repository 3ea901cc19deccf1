"""The README's first screen gives the two set-up commands, and they are what make and CI run."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_screen_commands():
    text = (ROOT / 'README.md').read_text()
    screen = '\n'.join(text.splitlines()[:40])
    blocks = re.findall(r'```(?:bash|sh)?\n(.*?)```', screen, re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith('#')
    ]


def make_targets():
    text = (ROOT / 'Makefile').read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r'^([\w-]+):([^\n]*)$', text, re.M)}


def test_first_screen_has_exactly_the_two_commands():
    assert first_screen_commands() == ['make demo', 'make test']


def test_both_targets_install_first_and_exist():
    targets = make_targets()
    for name in ('demo', 'test'):
        assert 'install' in targets[name].split(), f'make {name} must depend on install'
    assert 'tools/install/install.sh' in (ROOT / 'Makefile').read_text()


def test_ci_runs_the_readme_test_command_and_nothing_else():
    lines = [line.strip() for line in (ROOT / '.ci' / 'run').read_text().splitlines()]
    commands = [
        line
        for line in lines
        if line and not line.startswith('#') and not line.startswith(('set ', 'cd '))
    ]
    assert commands == ['make test']


def model_zoo_section() -> str:
    text = (ROOT / 'README.md').read_text()
    start = text.index("## Model zoo: the paper's COCO tables")
    return text[start : text.index('\n## ', start + 1)]


def test_readme_names_only_existing_configs():
    named = set(re.findall(r'(?<![\w/])configs/[\w./-]+\.py', (ROOT / 'README.md').read_text()))
    assert named and all((ROOT / path).is_file() for path in named), sorted(
        path for path in named if not (ROOT / path).is_file()
    )


def test_model_zoo_gives_every_row_its_results_links_and_commands():
    """Per row of configs/paper_recipes.json: a table line with its config, the paper's AP /
    oLRP and its model and log links, and the commands that convert and evaluate its model."""
    zoo = model_zoo_section()
    rows = json.loads((ROOT / 'configs' / 'paper_recipes.json').read_text())['rows']
    for name, row in rows.items():
        (line,) = [
            line
            for line in zoo.splitlines()
            if line.startswith('|') and f'`configs/{name}`' in line
        ]
        results = row['results']
        ap = (
            f'{results["ap_minival"]} / {results["ap_test_dev"]}'
            if 'ap_test_dev' in results
            else f' {results["ap_minival"]} '
        )
        assert ap in line, (name, line)
        if 'olrp' in results:
            assert f' {results["olrp"]} ' in line
        assert f']({row["weights_url"]})' in line and f']({row["log_url"]})' in line
        convert = re.search(
            rf'convert_paper_checkpoint\.py \S+ (\S+) --config configs/'
            rf'{re.escape(name)}\n',
            zoo,
        )
        assert convert, f'no convert command for {name}'
        converted = convert.group(1)
        assert f'tools/dist_test.sh configs/{name} {converted} 4' in zoo
