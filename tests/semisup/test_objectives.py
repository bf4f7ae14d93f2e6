"""Objectives on unlabeled images: each lowers its own loss on a small real batch and moves the
segmenter; the EMA teacher follows its formula; the ramp; strong views keep their geometry; every
objective runs in 2D and 3D through the real loop and records what it used."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.data.batches import whole_set
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.run_data import load_run_data
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.loop import build_method, run_training
from genseg_cli.semisup.base import masked_soft_dice, pixel_loss
from genseg_cli.semisup.ema import EmaTeacher
from genseg_cli.semisup.fixmatch import FixMatch
from genseg_cli.semisup.perturb import StrongPerturbation, cutmix, cutmix_boxes

CPU = resolve_runtime("cpu", "fp32", False)
EAGER = ["ssl.ramp_up=0"]  # full weight from the first step
OBJECTIVES = {
    "mean_teacher": EAGER,
    "fixmatch": [*EAGER, "ssl.threshold=0", "ssl.pseudo_labels=student"],
    "fixmatch_fp": [*EAGER, "ssl.threshold=0", "ssl.feature_dropout=0.5"],
    "fixmatch_dice": [*EAGER, "ssl.threshold=0", "ssl.pseudo_labels=student", "ssl.dice_weight=1"],
    "cross_teaching": EAGER,
}


def ssl_overrides(name: str) -> list[str]:
    group = "fixmatch" if name.startswith("fixmatch") else name
    return [f"ssl={group}", *OBJECTIVES[name]]


@pytest.fixture(scope="module")
def jsrt_batch():
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real datasets not found")
    cfg = compose("train", ["profile=debug"])
    data = load_run_data(dataset_spec("jsrt"), DATA_DIR, 9, 0, 0.2, with_ood=False)
    return whole_set(data.train[:4], DataSpec.from_config(cfg))


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_objective_lowers_its_loss_and_moves_the_segmenter(name, jsrt_batch):
    torch.manual_seed(0)
    cfg = compose("train", ["profile=debug", "trainer.precision=fp32", *ssl_overrides(name)])
    method = build_method(cfg, CPU)
    images, masks = jsrt_batch["image"][:2], jsrt_batch["mask"][:2]
    unlabeled = jsrt_batch["image"][2:4]
    objective = method.unlabeled

    def measured() -> float:  # the objective's loss on one fixed draw, no update
        torch.manual_seed(1)
        state = copy.deepcopy(objective.state_dict())
        student, context = objective.prepare(method.segmenter, unlabeled, images, masks)
        method.segmenter.train()
        with torch.no_grad():
            loss, _ = objective.loss(method.segmenter(student), context)
        objective.load_state_dict(state)
        return float(loss)

    weights = [p.detach().clone() for p in method.segmenter.parameters()]
    before = measured()
    for _ in range(8):
        losses = method.segmentation_update(images, masks, unlabeled=unlabeled)
        assert {"loss/seg", "loss/unlabeled"} <= set(losses)
    assert measured() < before
    moved = [
        not torch.equal(a, b) for a, b in zip(weights, method.segmenter.parameters(), strict=True)
    ]
    assert all(moved)


def segmenters_after_twin_updates(cfg, batch) -> dict[str, list[torch.Tensor]]:
    """The segmenter after one update from one seed: as configured (twice), and with the
    objective's term multiplied by 0 (the unlabeled images still in the forward pass)."""
    images, masks, unlabeled = batch["image"][:2], batch["mask"][:2], batch["image"][2:4]
    out = {}
    for twin in ("plain", "again", "term off"):
        torch.manual_seed(0)
        method = build_method(cfg, CPU)
        if twin == "term off":
            method.unlabeled.weight = lambda: 0.0
        torch.manual_seed(1)
        losses = method.segmentation_update(images, masks, unlabeled=unlabeled)
        assert losses["loss/unlabeled"] > 0, twin  # a term to switch off
        out[twin] = [p.detach().clone() for p in method.segmenter.parameters()]
    return out


def assert_the_term_moves_the_segmenter(twins: dict[str, list[torch.Tensor]]) -> None:
    pairs = zip(twins["plain"], twins["again"], strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)  # deterministic: a difference has a cause
    pairs = zip(twins["plain"], twins["term off"], strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_objectives_term_changes_the_segmenters_update(name, jsrt_batch):
    """Twin updates, one with the unlabeled term multiplied by 0: the segmenters differ, so the
    term itself reaches the update (the supervised part alone also moves the weights and lowers
    the objective's loss, which the test above cannot tell apart)."""
    cfg = compose("train", ["profile=debug", "trainer.precision=fp32", *ssl_overrides(name)])
    assert_the_term_moves_the_segmenter(segmenters_after_twin_updates(cfg, jsrt_batch))


def test_masked_soft_dice_counts_only_the_masked_pixels():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]]]])
    targets = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    mask = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    p = torch.sigmoid(logits)[0, 0]
    overlap, total = p[0, 0] + p[1, 0], p[0, 0] + p[0, 1] + p[1, 0] + 2.0
    expected = 1 - (2 * overlap + 1) / (total + 1)
    assert masked_soft_dice(logits, targets, mask) == pytest.approx(float(expected))
    flipped = logits.clone()
    flipped[0, 0, 1, 1] = -9.0  # an unmasked pixel: no effect
    assert masked_soft_dice(flipped, targets, mask) == masked_soft_dice(logits, targets, mask)
    one_hot = torch.cat([1 - targets, targets], 1)  # two-channel logits: mean over both classes
    two = masked_soft_dice(torch.cat([-logits, logits], 1), one_hot, mask)
    assert 0 < float(two) < 1


def test_fixmatch_dice_weight_adds_the_confident_dice_to_the_pseudo_label_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8)
    labels = (torch.rand(2, 1, 8, 8) > 0.8).float()
    confident = (torch.rand(2, 1, 8, 8) > 0.3).float()
    ce = (pixel_loss(logits, labels) * confident).mean()
    plain = FixMatch(weight=1.0, ramp_up=0.0, total_steps=10)
    with_dice = FixMatch(weight=1.0, ramp_up=0.0, total_steps=10, dice_weight=0.5)
    assert plain.pseudo_label_loss(logits, labels, confident) == pytest.approx(float(ce))
    dice = masked_soft_dice(logits, labels, confident)
    assert with_dice.pseudo_label_loss(logits, labels, confident) == pytest.approx(
        float(ce + 0.5 * dice)
    )
    context = {"labels": labels, "confident": confident}
    assert with_dice.loss(logits, context)[0] == pytest.approx(float(ce + 0.5 * dice))
    with pytest.raises(ValueError, match="dice_weight"):
        FixMatch(weight=1.0, ramp_up=0.0, total_steps=10, dice_weight=-1)


def test_ema_teacher_follows_the_formula():
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    teacher = EmaTeacher(student, decay=0.99)
    for t in range(3):
        before = [p.clone() for p in teacher.network.parameters()]
        with torch.no_grad():
            for p in student.parameters():
                p.add_(torch.randn_like(p))
        student.train()(torch.randn(4, 3))  # moves batch-norm statistics
        decay = min(0.99, (1 + t) / (10 + t))
        teacher.update(student)
        for old, new, s in zip(
            before, teacher.network.parameters(), student.parameters(), strict=True
        ):
            assert torch.allclose(new, decay * old + (1 - decay) * s)
        assert torch.equal(teacher.network[1].running_mean, student[1].running_mean)
    assert int(teacher.updates) == 3


def test_the_weight_ramps_up_over_its_share_of_the_steps():
    objective = FixMatch(weight=2.0, ramp_up=0.5, total_steps=100)
    assert objective.weight() == pytest.approx(2.0 * math.exp(-5))
    objective.steps_done = 25
    assert objective.weight() == pytest.approx(2.0 * math.exp(-5 * 0.25))
    objective.steps_done = 50
    assert objective.weight() == pytest.approx(2.0)
    assert FixMatch(weight=1.0, ramp_up=0.0, total_steps=100).weight() == 1.0


@pytest.mark.parametrize("shape", [(4, 1, 16, 16), (3, 1, 8, 12, 10)])
def test_strong_views_change_appearance_and_cutmix_moves_labels_with_images(shape):
    torch.manual_seed(0)
    images = torch.rand(shape) * 2 - 1
    strong = StrongPerturbation(p=1.0, blur=1.0)(images)
    assert strong.shape == images.shape and not torch.allclose(strong, images)
    assert strong.min() >= -1 and strong.max() <= 1
    labels = (images > 0).float()
    boxes, partner = cutmix_boxes(shape[0], tuple(shape[2:]), p=1.0)
    mixed_images, mixed_labels = cutmix(images, boxes, partner), cutmix(labels, boxes, partner)
    assert torch.equal(mixed_labels, (mixed_images > 0).float())  # labels follow their pixels
    assert (boxes.flatten(1).sum(1) > 0).all()


@pytest.mark.parametrize(
    ("dataset", "objective"),
    [
        ("jsrt", "fixmatch"),
        ("hippocampus", "mean_teacher"),
        ("hippocampus", "fixmatch"),
        ("hippocampus", "cross_teaching"),
    ],
)
def test_objectives_run_through_the_loop_and_record_the_unlabeled_count(
    dataset, objective, data_dir, tmp_path
):
    overrides = [f"dataset={dataset}", "profile=debug", f"ssl={objective}", "n_unlabeled=5"]
    # fp32: what is tested is the wiring; four bf16 steps of a random 3D pair can overflow
    overrides.append("trainer.precision=fp32")
    if dataset == "hippocampus" and objective == "cross_teaching":
        overrides.append("backbone@ssl.partner=unet")  # a partner with a 3D network
    metrics = run_training(compose("train", overrides), tmp_path)
    assert metrics["run"]["method"] == f"baseline+{objective}"
    assert metrics["run"]["n_unlabeled"] == 5
    splits = json.loads((tmp_path / "splits.json").read_text())
    assert len(splits["unlabeled"]) == 5 and not set(splits["unlabeled"]) & set(splits["test"])


def test_feature_perturbation_is_refused_for_a_backbone_without_an_encoder(data_dir, tmp_path):
    from genseg_cli.core.errors import GensegError

    cfg = compose(
        "train", ["dataset=hippocampus", "profile=debug", "ssl=fixmatch", "ssl.feature_dropout=0.5"]
    )
    with pytest.raises(GensegError, match="ssl.feature_dropout=0"):
        build_method(cfg, CPU)
