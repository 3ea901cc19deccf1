"""The README's first screen gives the two set-up commands, and they are what make and CI run."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_screen_commands():
    text = (ROOT / 'README.md').read_text()
    screen = '\n'.join(text.splitlines()[:40])
    blocks = re.findall(r'```(?:bash|sh)?\n(.*?)```', screen, re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith('#')]


def make_targets():
    text = (ROOT / 'Makefile').read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r'^([\w-]+):([^\n]*)$', text, re.M)}


def test_first_screen_has_exactly_the_two_commands():
    assert first_screen_commands() == ['make demo', 'make test']


def test_both_targets_install_first_and_exist():
    targets = make_targets()
    for name in ('demo', 'test'):
        assert 'install' in targets[name].split(), f'make {name} must depend on install'
    assert 'tools/install.sh' in (ROOT / 'Makefile').read_text()


def test_ci_runs_the_readme_test_command_and_nothing_else():
    lines = [line.strip() for line in (ROOT / '.ci' / 'run').read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith('#')
                and not line.startswith(('set ', 'cd '))]
    assert commands == ['make test']
