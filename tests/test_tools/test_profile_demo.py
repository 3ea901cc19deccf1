"""tools/analysis_tools/profile_demo.py on the demo's --quick data: every stage of the iterations
it records is timed, and the iterations across an epoch's end are left out."""

import pytest

from tests.tool_loader import load_tool


@pytest.fixture(scope='module')
def profile():
    return load_tool('profile_demo')


def test_quick_profile_times_every_stage(profile, tmp_path, capsys):
    # --quick: 8 images in batches of 4, 2 iterations an epoch; the first is skipped, and the
    # first of the second epoch follows the epoch's end: 2 iterations recorded
    seconds = profile.main(
        [
            '--quick',
            '--epochs',
            '2',
            '--skip',
            '1',
            '--threads',
            '1',
            '--data-root',
            str(tmp_path / 'data'),
            '--work-dir',
            str(tmp_path / 'run'),
        ]
    )
    out = capsys.readouterr().out

    assert set(seconds) == {'wall', 'cpu'}
    for clock in ('wall', 'cpu'):
        assert list(seconds[clock]) == list(profile.STAGES)
        assert all(len(values) == 2 for values in seconds[clock].values())
    for stage in (
        'preprocess',
        'backbone+neck',
        'head forward',
        'anchors+targets',
        'loss',
        'backward',
        'optim step',
    ):
        assert min(seconds['wall'][stage]) > 0 and min(seconds['cpu'][stage]) > 0, stage
    assert min(seconds['wall']['data wait']) > 0
    assert '2 iterations recorded (batch 4, 0 loader workers, 1 torch threads)' in out
    for stage in profile.STAGES:
        assert f'\n{stage:16} ' in out
    assert 'main process: ' in out and 'loader workers: ' in out
