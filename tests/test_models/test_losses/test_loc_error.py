"""giou_loss and giou_loc_error against hand-computed GIoU values."""

import pytest
import torch

from mmdet_alrp.models.losses import giou_loc_error, giou_loss


def test_hand_computed_pairs():
    pred = torch.tensor(
        [
            [0.0, 0.0, 2.0, 2.0],  # overlaps by a unit square
            [0.0, 0.0, 1.0, 1.0],  # disjoint, one unit apart
            [3.0, 4.0, 7.0, 9.0],
        ]
    )  # identical
    target = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 3.0, 1.0], [3.0, 4.0, 7.0, 9.0]])
    # 1: IoU 1/7, hull 3x3 = 9, GIoU = 1/7 - (9 - 7)/9 = -5/63, 1 - GIoU = 68/63
    # 2: IoU 0, hull 3x1 = 3, GIoU = -(3 - 2)/3, 1 - GIoU = 4/3
    # 3: GIoU 1, error 0
    one_minus_giou = torch.tensor([68 / 63, 4 / 3, 0.0])
    torch.testing.assert_close(giou_loss(pred, target), one_minus_giou)
    torch.testing.assert_close(giou_loc_error(pred, target, 0.5), one_minus_giou)
    torch.testing.assert_close(giou_loc_error(pred, target, 0.7), one_minus_giou / 0.6)
    torch.testing.assert_close(giou_loc_error(pred, target, 0.0), one_minus_giou / 2)


def test_gradient_reaches_the_prediction():
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]], requires_grad=True)
    giou_loc_error(pred, torch.tensor([[1.0, 1.0, 3.0, 3.0]]), 0.5).sum().backward()
    # moving the box towards the target lowers the error
    assert (pred.grad[0, 2:] < 0).all() and (pred.grad[0, :2] < 0).all()


def test_half_precision_and_empty_inputs():
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float16)
    target = torch.tensor([[1.0, 1.0, 3.0, 3.0]], dtype=torch.float16)
    error = giou_loc_error(pred, target, 0.5)
    assert error.dtype == torch.float32
    assert error.item() == pytest.approx(68 / 63, rel=1e-6)
    empty = torch.zeros(0, 4, requires_grad=True)
    error = giou_loc_error(empty, torch.zeros(0, 4), 0.5)
    assert error.shape == (0,) and error.dtype == torch.float32
    error.sum().backward()  # still in the graph: a batch with no positive reaches the regressor
    assert empty.grad is not None


@pytest.mark.parametrize(
    'pred, target, tau, message',
    [
        (torch.zeros(2, 4), torch.zeros(2, 4), 1.0, 'tau'),
        (torch.zeros(2, 4), torch.zeros(2, 4), -0.1, 'tau'),
        (torch.zeros(2, 5), torch.zeros(2, 4), 0.5, 'pred_boxes'),
        (torch.zeros(2, 4), torch.zeros(4), 0.5, 'target_boxes'),
        (torch.zeros(2, 4), torch.zeros(3, 4), 0.5, '3'),
    ],
)
def test_bad_input(pred, target, tau, message):
    with pytest.raises(ValueError, match=message):
        giou_loc_error(pred, target, tau)
