"""Self-balance: the update formula, the checkpoint round trip, DDP agreement, and bad values
(hyperparameters, non-finite batches)."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmdet_alrp.engine.hooks import SelfBalanceHook
from mmdet_alrp.models.losses import SelfBalance
from mmdet_alrp.models.losses import self_balance as self_balance_module


def feed(sb, pairs):
    for cls, loc in pairs:
        sb.accumulate(torch.tensor(cls), torch.tensor(loc))


def test_update_formula_on_known_sequences():
    sb = SelfBalance()
    assert sb.weight.item() == 50
    feed(sb, [(0.9, 0.3), (0.7, 0.1)])  # means 0.8 and 0.2
    assert sb.weight.item() == 50  # unchanged until the period ends
    sb.update()
    assert sb.weight.item() == pytest.approx((0.8 + 0.2) / 0.2)
    feed(sb, [(0.5, 0.5)])
    sb.update()
    assert sb.weight.item() == pytest.approx(2.0)
    sb.update()  # an empty period keeps SB
    assert sb.weight.item() == pytest.approx(2.0)


def test_weigh_scales_localisation_and_logs():
    sb = SelfBalance(init_weight=10.0).train()
    out = sb.weigh(torch.tensor(0.6), torch.tensor(0.2, requires_grad=True))
    assert out['loss_bbox'].item() == pytest.approx(2.0)
    assert out['sb_weight'].item() == 10 and out['alrp_loc'].item() == pytest.approx(0.2)
    assert sb.sums.tolist() == pytest.approx([0.6, 0.2, 1.0])
    sb.eval().weigh(torch.tensor(0.6), torch.tensor(0.2))
    assert sb.sums.tolist() == pytest.approx([0.6, 0.2, 1.0])  # evaluation does not count


def test_checkpoint_round_trip_restores_weight_and_sums(tmp_path):
    sb = SelfBalance()
    feed(sb, [(0.9, 0.3)])
    sb.update()
    feed(sb, [(0.4, 0.1), (0.2, 0.3)])
    path = tmp_path / 'sb.pth'
    torch.save(torch.nn.Sequential(sb).state_dict(), path)
    restored = torch.nn.Sequential(SelfBalance())
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert restored[0].weight.item() == pytest.approx(4.0)
    assert restored[0].sums.tolist() == pytest.approx([0.6, 0.4, 2.0])
    restored[0].update()
    assert restored[0].weight.item() == pytest.approx(2.5)


def _rank_main(rank, world, port, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    sb = SelfBalance()
    # Different batches on each rank: rank 0 sees (0.9, 0.1), rank 1 sees (0.3, 0.5).
    feed(sb, [(0.9, 0.1)] if rank == 0 else [(0.3, 0.5)])
    sb.update()
    out[rank] = sb.weight.item()
    dist.destroy_process_group()


def test_two_gloo_ranks_agree_on_sb():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_rank_main, args=(2, port, out), nprocs=2, join=True)
    # Both ranks use the means over all ranks: (0.6 + 0.3) / 0.3.
    assert out[0] == pytest.approx(3.0) and out[1] == pytest.approx(3.0)


NAN, INF = float('nan'), float('inf')


@pytest.mark.parametrize('init_weight', [0.0, -1.0, NAN, INF, 'fifty', None])
def test_init_weight_checked_when_built(init_weight):
    with pytest.raises(ValueError, match='init_weight'):
        SelfBalance(init_weight=init_weight)


def test_non_finite_batch_is_skipped_and_logged(monkeypatch):
    logged = []
    monkeypatch.setattr(
        self_balance_module, 'print_log', lambda message, **kwargs: logged.append(message)
    )
    sb = SelfBalance()
    feed(sb, [(0.9, 0.3), (NAN, 0.2), (0.5, INF), (-INF, 0.1), (0.7, 0.1)])
    assert len(logged) == 3 and all('left out' in message for message in logged)
    assert sb.sums.tolist() == pytest.approx([1.6, 0.4, 2.0])
    sb.update()
    assert sb.weight.item() == pytest.approx((0.8 + 0.2) / 0.2)  # the finite batches only
    feed(sb, [(NAN, NAN)])
    sb.update()  # a period of non-finite batches only keeps SB
    assert sb.weight.item() == pytest.approx(5.0)


def test_nan_loss_still_stops_through_weigh():
    """The head's terms stay what they are (a NaN loss is not hidden), only SB is kept."""
    sb = SelfBalance(init_weight=2.0).train()
    out = sb.weigh(torch.tensor(NAN), torch.tensor(0.5))
    assert torch.isnan(out['loss_cls']) and sb.sums.tolist() == [0.0, 0.0, 0.0]


def _rank_main_skipping(rank, world, port, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    sb = SelfBalance()
    # Rank 1's second batch is NaN: left out on both ranks, which stay in step.
    feed(sb, [(0.9, 0.1), (0.5, 0.5)] if rank == 0 else [(0.3, 0.5), (NAN, 0.5)])
    sb.update()
    out[rank] = sb.weight.item()
    dist.destroy_process_group()


def test_two_gloo_ranks_skip_a_nan_batch_together():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_rank_main_skipping, args=(2, port, out), nprocs=2, join=True)
    # The three finite batches: L_cls sum 1.7, L_loc sum 1.1.
    assert out[0] == pytest.approx(2.8 / 1.1) and out[1] == pytest.approx(2.8 / 1.1)


@pytest.mark.parametrize('period', [0, -2, 2.5, '3', True, float('nan')])
def test_hook_period_must_be_a_positive_int(period):
    with pytest.raises(ValueError, match='period must be a positive int'):
        SelfBalanceHook(period=period)


def test_hook_period_accepts_ints():
    assert SelfBalanceHook(period=3).period == 3 and SelfBalanceHook().period is None
