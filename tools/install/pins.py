"""Reads requirements/pins.txt, the one list of the packages mmdet_alrp installs and their pinned
versions (its header describes the format), and tells which of them the running interpreter has.

Standard library only: install.sh runs it in a new, empty venv. As a script it prints the
requirements of one group, one a line, for install.sh and test_core_oldest_torch.sh::

    python tools/install/pins.py GROUP [--with FLAG]... [--without FLAG]... [--held] [--missing]
"""

import argparse
import importlib.metadata
import operator
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

PINS_FILE = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'requirements', 'pins.txt'
)
FLAGS = ('runtime', 'held', 'any-version', 'no-deps', 'built')
OPERATORS = {
    '==': operator.eq,
    '!=': operator.ne,
    '<=': operator.le,
    '>=': operator.ge,
    '<': operator.lt,
    '>': operator.gt,
}
_REQUIREMENT = re.compile(r'([A-Za-z0-9][A-Za-z0-9._-]*)((?:(?:==|!=|<=|>=|<|>)[0-9][0-9.]*,?)*)$')
_CLAUSE = re.compile(r'(==|!=|<=|>=|<|>)([0-9][0-9.]*)$')


class Pin(NamedTuple):
    """One line of the pins file: ``name`` as written, ``specifiers`` such as ``'==2.13.0'``,
    ``'<2'`` or ``''`` (any version), its ``group`` and its ``flags``."""

    name: str
    specifiers: str
    group: str
    flags: Tuple[str, ...]

    @property
    def requirement(self) -> str:
        """The pip requirement, e.g. ``'numpy<2'``."""
        return self.name + self.specifiers


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it: ``Pillow``, ``pillow`` -> ``pillow``."""
    return re.sub(r'[-_.]+', '-', name).lower()


def release(version: str) -> Tuple[int, ...]:
    """The release numbers of a version: ``'2.13.0+cpu'`` -> (2, 13, 0), ``'3.0rc1'`` -> (3, 0)."""
    numbers = re.match(r'\d+(?:\.\d+)*', version)
    if numbers is None:
        raise ValueError(f'version {version!r} does not start with a release number')
    return tuple(int(n) for n in numbers.group().split('.'))


def parse_line(line: str, where: str) -> Optional[Pin]:
    """The pin on one line of the pins file (None for a blank or comment line); ``where`` names
    the line in errors."""
    words = line.split('#', 1)[0].split()
    if not words:
        return None
    match = _REQUIREMENT.match(words[0])
    if match is None or match.group(2).endswith(','):
        raise ValueError(
            f'{where}: {words[0]!r} is not a name with optional ==, !=, <, <=, >, >= '
            'versions joined by commas'
        )
    if len(words) < 2 or words[1] in FLAGS:
        raise ValueError(f'{where}: the requirement {words[0]!r} needs a group after it')
    unknown = [word for word in words[2:] if word not in FLAGS]
    if unknown:
        raise ValueError(f'{where}: unknown flags {unknown} (known: {", ".join(FLAGS)})')
    return Pin(match.group(1), match.group(2), words[1], tuple(words[2:]))


def read_pins(path: str = PINS_FILE) -> List[Pin]:
    """Every pin of the file in file order; a name appears at most once a group."""
    pins: List[Pin] = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            pin = parse_line(line, f'{path}:{number}')
            if pin is None:
                continue
            if any(normalize(p.name) == normalize(pin.name) and p.group == pin.group for p in pins):
                raise ValueError(f'{path}:{number}: {pin.name} is pinned twice in {pin.group}')
            pins.append(pin)
    return pins


def installed_versions() -> Dict[str, str]:
    """Normalized name -> version of every distribution this interpreter can import (the first
    one on sys.path where several are installed)."""
    versions: Dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata['Name']
        if name:
            versions.setdefault(normalize(name), dist.version)
    return versions


def satisfied(pin: Pin, versions: Dict[str, str]) -> bool:
    """Whether an installed version (``versions`` as :func:`installed_versions`) meets ``pin``;
    any installed version does for an ``any-version`` pin."""
    version = versions.get(normalize(pin.name))
    if version is None:
        return False
    if 'any-version' in pin.flags or not pin.specifiers:
        return True
    have = release(version)
    for clause in pin.specifiers.split(','):
        op, wanted = _CLAUSE.match(clause).groups()
        want = release(wanted)
        width = max(len(have), len(want))
        if not OPERATORS[op](have + (0,) * (width - len(have)), want + (0,) * (width - len(want))):
            return False
    return True


def select(
    pins: Sequence[Pin],
    group: str,
    with_flags: Sequence[str] = (),
    without_flags: Sequence[str] = (),
    held: bool = False,
    missing_from: Optional[Dict[str, str]] = None,
) -> List[str]:
    """The requirements of ``group`` that have every flag of ``with_flags`` and none of
    ``without_flags``; with ``held``, followed by the held pins of other groups that the
    selection does not name; with ``missing_from`` (installed versions), only those not met."""
    if group not in {pin.group for pin in pins}:
        raise ValueError(f'no pin is in the group {group!r}')
    chosen = [
        pin
        for pin in pins
        if pin.group == group
        and all(flag in pin.flags for flag in with_flags)
        and not any(flag in pin.flags for flag in without_flags)
    ]
    if held:
        names = {normalize(pin.name) for pin in chosen}
        for pin in pins:
            if 'held' in pin.flags and normalize(pin.name) not in names:
                chosen.append(pin)
                names.add(normalize(pin.name))
    if missing_from is not None:
        chosen = [pin for pin in chosen if not satisfied(pin, missing_from)]
    return [pin.requirement for pin in chosen]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description='Print the pinned requirements of a group.')
    parser.add_argument('group')
    parser.add_argument(
        '--with',
        dest='with_flags',
        action='append',
        default=[],
        choices=FLAGS,
        help='only pins with this flag',
    )
    parser.add_argument(
        '--without',
        dest='without_flags',
        action='append',
        default=[],
        choices=FLAGS,
        help='only pins without this flag',
    )
    parser.add_argument(
        '--held',
        action='store_true',
        help='add the held pins of the other groups (numpy<2, setuptools<70)',
    )
    parser.add_argument(
        '--missing', action='store_true', help='only the pins this interpreter does not meet'
    )
    args = parser.parse_args(argv)
    missing_from = installed_versions() if args.missing else None
    for requirement in select(
        read_pins(), args.group, args.with_flags, args.without_flags, args.held, missing_from
    ):
        print(requirement)


if __name__ == '__main__':
    main()
