import numpy as np
import pytest
import torch

from genseg_cli.evaluation.metrics import batch_dice, dice_iou


def masks(*rows):
    return np.array(rows, dtype=bool)


@pytest.mark.parametrize(
    ("pred", "target", "dice", "iou"),
    [
        (masks([1, 1], [0, 0]), masks([1, 1], [0, 0]), 1.0, 1.0),  # identical
        (masks([1, 1], [0, 0]), masks([0, 0], [1, 1]), 0.0, 0.0),  # disjoint
        (masks([1, 1], [1, 0]), masks([1, 0], [0, 0]), 0.5, 1 / 3),  # 2*1/(3+1), 1/3
        (masks([1, 1], [1, 1]), masks([1, 1], [0, 0]), 2 / 3, 0.5),  # 2*2/(4+2), 2/4
        (masks([0, 0], [0, 0]), masks([0, 0], [0, 0]), 1.0, 1.0),  # both empty: correct "nothing"
        (masks([1, 0], [0, 0]), masks([0, 0], [0, 0]), 0.0, 0.0),  # false positive on empty mask
        (masks([0, 0], [0, 0]), masks([0, 1], [0, 0]), 0.0, 0.0),  # missed lesion
    ],
)
def test_dice_iou_hand_computed(pred, target, dice, iou):
    assert dice_iou(pred, target) == pytest.approx((dice, iou))


def test_dice_iou_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        dice_iou(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


def test_batch_dice_agrees_with_numpy_version():
    rng = np.random.default_rng(0)
    target = rng.random((3, 1, 8, 8)) > 0.5
    logits = torch.from_numpy(rng.normal(size=(3, 1, 8, 8))).float()
    target[2] = False
    logits[2] = -5  # empty prediction of an empty mask
    expected = [dice_iou(logits[i, 0].numpy() > 0, target[i, 0])[0] for i in range(3)]
    got = batch_dice(logits, torch.from_numpy(target).float())
    assert got.tolist() == pytest.approx(expected)
    assert got[2] == 1.0
