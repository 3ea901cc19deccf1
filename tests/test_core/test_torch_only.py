"""alrp_core depends on torch alone: it imports and computes both losses with mmdet, mmcv and
mmengine made unimportable (a child interpreter whose import system refuses them)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmdet', 'mmcv', 'mmengine', 'mmdet_alrp'):
            raise ImportError(f'{name} is blocked in this test')
        return None

sys.meta_path.insert(0, Refuse())
import torch
import alrp_core
from alrp_core import autograd, backends, batch, intervals, options, ranks

logits = torch.tensor([2.0, 0.5, -1.0, 1.0], requires_grad=True)
targets = torch.tensor([1, 0, 0, 1])
loss_cls, loss_loc = alrp_core.alrp_loss(logits, targets, torch.tensor([0.2, 0.4]))
ap = alrp_core.ap_loss(logits, targets)
(loss_cls + ap).backward()
blocked = [m for m in sys.modules if m.split('.')[0] in ('mmdet', 'mmcv', 'mmengine', 'mmdet_alrp')]
print(round(loss_cls.item(), 6), round(loss_loc.item(), 6), round(ap.item(), 6), blocked)
"""


def test_core_imports_and_runs_without_mmdet():
    result = subprocess.run(
        [sys.executable, '-c', CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loss_cls, loss_loc, ap, blocked = result.stdout.split(maxsplit=3)
    # Hand-computed, delta = 1, H(x) = clamp(x / 2 + 1/2, 0, 1): positive 2.0 has rank 1 (FP 0);
    # positive 1.0 has the positive 2.0 (H = 1) and the negative 0.5 (H(-0.5) = 0.25) above it:
    # rank = 2 + 0.25, FP / rank = 0.25 / 2.25.
    assert float(loss_cls) == round(0.5 * 0.25 / 2.25, 6)
    # loss_loc: positives by descending score, cumsum(e) / rank: (0.2 / 1 + 0.6 / 2.25) / 2.
    assert float(loss_loc) == round((0.2 + 0.6 / 2.25) / 2, 6)
    # AP Loss: precision errors 0 (score 2.0) and 0.25 / 2.25 (score 1.0); the running minimum
    # from the lowest score up keeps both; mean over the two positives.
    assert float(ap) == round(0.5 * 0.25 / 2.25, 6)
    assert blocked.strip() == '[]'


COLLECT = """
import sys

for name in ('mmdet', 'mmcv', 'mmengine', 'mmdet_alrp'):
    sys.modules[name] = None  # as if not installed: import fails, find_spec gives None
import pytest

sys.exit(pytest.main(['--collect-only', '-p', 'no:cacheprovider', 'tests/test_core']))
"""


def test_core_tests_collect_without_mmdet():
    # `make test-core-oldest-torch` runs tests/test_core where only torch is installed: no
    # conftest or test module on the way may import mmdet, mmcv or mmengine.
    result = subprocess.run(
        [sys.executable, '-c', COLLECT], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'tests collected' in result.stdout
