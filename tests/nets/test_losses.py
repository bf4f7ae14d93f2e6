import torch
import torch.nn.functional as F

from genseg_cli.nets.losses import SegmentationLoss


def one_hot(labels: torch.Tensor, channels: int = 3) -> torch.Tensor:
    return F.one_hot(labels, channels).movedim(-1, 1).float()


def test_binary_loss_is_lower_for_the_right_answer():
    loss = SegmentationLoss()
    masks = (torch.rand(2, 1, 8, 8) > 0.5).float()
    assert loss(masks * 20 - 10, masks) < loss(-(masks * 20 - 10), masks)


def test_multiclass_loss_is_cross_entropy_plus_dice_on_volumes():
    loss = SegmentationLoss(bce_weight=1.0, dice_weight=0.0)
    labels = torch.randint(0, 3, (2, 4, 6, 4))
    logits = torch.randn(2, 3, 4, 6, 4, requires_grad=True)
    value = loss(logits, one_hot(labels))
    assert torch.allclose(value, F.cross_entropy(logits, labels))
    value.backward()
    assert logits.grad.abs().sum() > 0
    full = SegmentationLoss()
    assert full(one_hot(labels) * 20, one_hot(labels)) < full(logits.detach(), one_hot(labels))
