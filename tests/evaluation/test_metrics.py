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


def test_hd95_of_a_shifted_cube_is_the_shift_in_mm():
    from genseg_cli.evaluation.metrics import hd95

    cube = np.zeros((12, 12, 12), bool)
    cube[3:7, 3:7, 3:7] = True
    assert hd95(cube, np.roll(cube, 2, axis=0)) == pytest.approx(2.0)
    assert hd95(cube, np.roll(cube, 2, axis=0), spacing=(1.5, 1.0, 1.0)) == pytest.approx(3.0)
    assert np.isnan(hd95(np.zeros_like(cube), cube))


def test_class_scores_per_label_and_their_mean():
    from genseg_cli.evaluation.metrics import class_scores

    target = np.zeros((4, 4, 4), np.uint8)
    target[:2] = 1
    target[2:] = 2
    pred = target.copy()
    pred[3] = 0  # half of class 2 missed
    row = class_scores(pred, target, ["a", "b"])
    assert row["dice_a"] == 1.0 and row["dice_b"] == pytest.approx(2 / 3)
    assert row["dice"] == pytest.approx((1 + 2 / 3) / 2)
    assert row["iou_b"] == pytest.approx(0.5)
    assert row["hd95_a"] == 0.0 and row["hd95_b"] > 0


def test_batch_dice_multiclass_ignores_background():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :2] = 1
    labels[0, 2:] = 2
    one_hot = torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).float()
    assert batch_dice(one_hot * 10, one_hot).item() == pytest.approx(1.0)
    swapped = one_hot[:, [0, 2, 1]]  # classes 1 and 2 exchanged, background right
    assert batch_dice(swapped * 10, one_hot).item() == pytest.approx(0.0)
