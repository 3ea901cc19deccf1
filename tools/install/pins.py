"""Reads requirements/constraints.txt, the exact, measured set of packages that make install
installs (its header describes the step and flags after each requirement), and tells which of
them the running interpreter has. Requirements and versions are parsed by ``packaging``, which
install.sh installs first. As a script it prints the requirements of one step, one a line::

    python tools/install/pins.py STEP [--with FLAG]... [--without FLAG]... [--held] [--missing]
"""

import argparse
import importlib.metadata
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

REQUIREMENTS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'requirements'
)
CONSTRAINTS_FILE = osp.join(REQUIREMENTS, 'constraints.txt')
FLAGS = ('held', 'any-version', 'no-deps', 'built')


class Pin(NamedTuple):
    """One requirement line of the constraints file: the ``requirement``, the ``step`` of
    install.sh that installs it and its ``flags``."""

    requirement: Requirement
    step: str
    flags: Tuple[str, ...]

    @property
    def name(self) -> str:
        """The name as written, e.g. ``'Pillow'``."""
        return self.requirement.name

    @property
    def key(self) -> str:
        """The name as pip compares names: ``'Pillow'`` -> ``'pillow'``."""
        return canonicalize_name(self.requirement.name)

    def __str__(self) -> str:
        """The pip requirement, e.g. ``'numpy==1.26.4'``."""
        return str(self.requirement)


def parse_line(line: str, where: str) -> Optional[Pin]:
    """The pin on one line (None for a blank or comment line); ``where`` names the line in
    errors."""
    text, _, annotation = line.partition('#')
    if not text.strip():
        return None
    try:
        requirement = Requirement(text.strip())
    except InvalidRequirement as error:
        raise ValueError(f'{where}: {text.strip()!r} is not a requirement: {error}') from None
    if requirement.extras or requirement.url or requirement.marker:
        raise ValueError(f'{where}: {text.strip()!r}: a constraint is a name and versions only')
    words = annotation.split()
    if not words or words[0] in FLAGS:
        raise ValueError(f'{where}: {requirement} needs its step in a comment after it')
    unknown = [word for word in words[1:] if word not in FLAGS]
    if unknown:
        raise ValueError(f'{where}: unknown flags {unknown} (known: {", ".join(FLAGS)})')
    return Pin(requirement, words[0], tuple(words[1:]))


def read_pins(path: str = CONSTRAINTS_FILE) -> List[Pin]:
    """Every pin of the file in file order; a name stands once."""
    pins: List[Pin] = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            pin = parse_line(line, f'{path}:{number}')
            if pin is None:
                continue
            if any(p.key == pin.key for p in pins):
                raise ValueError(f'{path}:{number}: {pin.name} stands twice')
            pins.append(pin)
    return pins


def installed_versions() -> Dict[str, str]:
    """Canonical name -> version of every distribution this interpreter can import (the first
    one on sys.path where several are installed)."""
    versions: Dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata['Name']
        if name:
            versions.setdefault(canonicalize_name(name), dist.version)
    return versions


def satisfied(pin: Pin, versions: Dict[str, str]) -> bool:
    """Whether an installed version (``versions`` as :func:`installed_versions`) meets ``pin``
    as pip would (``==2.13.0`` takes ``2.13.0+cpu``); any installed version does for an
    ``any-version`` pin, and one that is not a valid version meets no specifier."""
    version = versions.get(pin.key)
    if version is None:
        return False
    if 'any-version' in pin.flags:
        return True
    try:
        return pin.requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def select(
    pins: Sequence[Pin],
    step: str,
    with_flags: Sequence[str] = (),
    without_flags: Sequence[str] = (),
    held: bool = False,
    missing_from: Optional[Dict[str, str]] = None,
) -> List[str]:
    """The requirements of ``step`` that have every flag of ``with_flags`` and none of
    ``without_flags``; with ``held``, followed by the held pins of other steps; with
    ``missing_from`` (installed versions), only those not met."""
    if step not in {pin.step for pin in pins}:
        raise ValueError(f'no pin is in the step {step!r}')
    chosen = [
        pin
        for pin in pins
        if pin.step == step
        and all(flag in pin.flags for flag in with_flags)
        and not any(flag in pin.flags for flag in without_flags)
    ]
    if held:
        chosen += [pin for pin in pins if 'held' in pin.flags and pin not in chosen]
    if missing_from is not None:
        chosen = [pin for pin in chosen if not satisfied(pin, missing_from)]
    return [str(pin) for pin in chosen]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description='Print the pinned requirements of a step.')
    parser.add_argument('step')
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
        help='add the held pins of the other steps (numpy, setuptools)',
    )
    parser.add_argument(
        '--missing', action='store_true', help='only the pins this interpreter does not meet'
    )
    args = parser.parse_args(argv)
    missing_from = installed_versions() if args.missing else None
    for requirement in select(
        read_pins(), args.step, args.with_flags, args.without_flags, args.held, missing_from
    ):
        print(requirement)


if __name__ == '__main__':
    main()
