"""The paper's two-network comparators, MCF and DCT (genseg_cli.semisup.mcf, .dct): each one's
unlabeled term moves the segmenter, lowers its own loss on real unlabeled images, MCF's review
is its own term, and a resumed run ends exactly like an uninterrupted one."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.engine.checkpoint import TrainingInterrupted
from genseg_cli.engine.loop import build_method, run_training
from genseg_cli.semisup.dct import jensen_shannon
from genseg_cli.semisup.mcf import disagreement, reviewed_error, sharpened
from tests.engine.test_reliability import cfg_for, without_timing
from tests.semisup.test_objectives import CPU, assert_the_term_moves_the_segmenter, jsrt_batch

__all__ = ["jsrt_batch"]  # the shared fixture: four real JSRT train pairs
EAGER = ["profile=debug", "trainer.precision=fp32", "ssl.ramp_up=0"]


def split(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return batch["image"][:2], batch["mask"][:2], batch["image"][2:4]


def partner_leads(method, images, masks, steps: int = 6) -> None:
    """Train MCF's partner alone on the labelled pairs, so that it is the better subnet and the
    segmenter learns its pseudo labels (DCPLG teaches only the worse subnet)."""
    objective = method.unlabeled
    for _ in range(steps):
        objective.partner_optimizer.zero_grad()
        objective.criterion(objective.partner(images), masks).backward()
        objective.partner_optimizer.step()


def built(name: str, batch, *more: str):
    torch.manual_seed(0)
    method = build_method(compose("train", [*EAGER, f"ssl={name}", *more]), CPU)
    if name == "mcf":
        images, masks, _ = split(batch)
        partner_leads(method, images, masks)
    return method


def own_loss(method, batch) -> float:
    """The objective's unlabeled loss on one fixed draw, the segmenter's term as a step computes
    it (prepare, the labelled term, then the loss), nothing updated."""
    images, masks, unlabeled = split(batch)
    objective = method.unlabeled
    state = copy.deepcopy(objective.state_dict())
    torch.manual_seed(1)
    method.segmenter.train()
    student, context = objective.prepare(method.segmenter, unlabeled, images, masks)
    with torch.no_grad():
        logits = method.segmenter(torch.cat([images, student]))
        objective.labelled_term(logits[:2], masks, context)
        if objective.name == "mcf":  # the distance to the partner's labels, whoever leads
            loss = objective.consistency(logits[2:], context)
        else:
            loss, _ = objective.loss(logits[2:], context)
    objective.load_state_dict(state)
    return float(loss)


@pytest.mark.parametrize("name", ["mcf", "dct"])
def test_the_unlabeled_term_moves_the_segmenter_and_lowers_its_loss(name, jsrt_batch):
    """Twin updates from one seed, one with the ramped unlabeled term multiplied by 0: the
    segmenters differ. Then a few updates lower the objective's own loss on the real images."""
    twins = {}
    for twin in ("plain", "again", "term off"):
        method = built(name, jsrt_batch)
        if twin == "term off":
            method.unlabeled.weight = lambda: 0.0
        torch.manual_seed(1)
        images, masks, unlabeled = split(jsrt_batch)
        losses = method.segmentation_update(images, masks, unlabeled=unlabeled)
        assert losses["loss/unlabeled"] > 0, twin  # a term to switch off
        twins[twin] = [p.detach().clone() for p in method.segmenter.parameters()]
    assert_the_term_moves_the_segmenter(twins)
    method = built(name, jsrt_batch)
    before = own_loss(method, jsrt_batch)
    images, masks, unlabeled = split(jsrt_batch)
    for _ in range(6):
        method.segmentation_update(images, masks, unlabeled=unlabeled)
    assert own_loss(method, jsrt_batch) < before


def test_mcf_reviews_where_the_subnets_disagree(jsrt_batch):
    """The review is a term of its own (a twin without it differs), and it counts exactly the
    pixels where the two subnets' hard predictions differ."""
    twins = {}
    for review in ("0.5", "0"):
        method = built("mcf", jsrt_batch, f"ssl.review_weight={review}")
        torch.manual_seed(1)
        images, masks, unlabeled = split(jsrt_batch)
        losses = method.segmentation_update(images, masks, unlabeled=unlabeled)
        assert 0 < losses["ssl/disagreement"] < 1
        twins[review] = [p.detach().clone() for p in method.segmenter.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(twins["0.5"], twins["0"], strict=True))
    first = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    second = torch.tensor([[[[1.0, 1.0], [-0.5, -2.0]]]])
    region = disagreement(first, second)
    assert region.tolist() == [[[[0.0, 1.0], [1.0, 0.0]]]]
    masks = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    p = torch.sigmoid(first)[0, 0]
    expected = (p[0, 1] ** 2 + p[1, 0] ** 2) / 2
    assert float(reviewed_error(first, masks, region)) == pytest.approx(float(expected))


def test_the_sharpened_labels_and_the_co_training_loss_follow_their_formulas():
    probs = torch.tensor([[[[0.8, 0.5]]]])
    expected = 0.8**10 / (0.8**10 + 0.2**10)
    assert sharpened(probs, 0.1)[0, 0, 0, 0] == pytest.approx(expected)
    assert sharpened(probs, 0.1)[0, 0, 0, 1] == pytest.approx(0.5)
    same = torch.randn(2, 1, 4, 4)
    assert float(jensen_shannon(same, same)) == pytest.approx(0.0, abs=1e-6)
    assert 0 < float(jensen_shannon(same, -same)) <= float(torch.log(torch.tensor(2.0)))


@pytest.mark.parametrize("name", ["mcf", "dct"])
def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(name, data_dir, tmp_path):
    """Both networks, the partner's optimiser and the ramp's count are in the checkpoint."""
    method = [f"ssl={name}", "n_unlabeled=4", "trainer.steps=4", "evaluation.tstr_steps=0"]
    whole = run_training(cfg_for(*method), tmp_path / "whole")
    with pytest.raises(TrainingInterrupted):
        run_training(cfg_for(*method, "trainer.stop_after=3"), tmp_path / "split")
    resumed = run_training(cfg_for(*method, f"resume={tmp_path / 'split'}"), tmp_path / "split")
    assert whole["run"]["method"] == f"baseline+{name}"
    same = json.dumps(without_timing(resumed), sort_keys=True)
    assert same == json.dumps(without_timing(whole), sort_keys=True)
    history = [pd.read_csv(tmp_path / d / "history.csv") for d in ("whole", "split")]
    pd.testing.assert_frame_equal(*history)
