"""The pseudo pairs' weight w learned at the upper level (`genseg_cli.mlo.pseudo_trust`): its
hypergradient <h, d theta'/dw> matches a central difference of L_val(W'(theta'(w))) through the
recipe's own G step (SGD and Adam, fp64), w moves in a short genseg run and is logged, stays
fixed with the key off, a run with it resumes exactly, and a twin whose hypergradient leaves out
the weight's contribution ends elsewhere."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tests.engine.test_reliability as reliability
from genseg_cli.core.config import compose
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.loop import run_training
from genseg_cli.generators.base import build_recipe
from genseg_cli.methods import genseg_upper
from genseg_cli.mlo.hypergrad import hypergradient
from genseg_cli.mlo.pseudo_trust import PseudoTrust, trust_hypergradient
from tests.engine.test_reliability import GENSEG_FAST, cfg_for
from tests.mlo.test_hypergrad import XI, look_ahead_val_loss, tiny_problem

CPU = resolve_runtime("cpu", "fp32", False)
DIRECTION = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)  # 2 real, 2 pseudo pairs


class ExactLSGAN(nn.Module):
    """GANLoss("lsgan") in the precision of its input (it casts to fp32)."""

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        return F.mse_loss(prediction, torch.full_like(prediction, float(target_is_real)))


def pair_weights(w: float) -> torch.Tensor:
    return 1.0 + (w - 1.0) * DIRECTION


def trust_setup(optimizer: str):
    """A small pix2pix recipe in fp64 whose optimiser has taken a few steps, a tiny segmenter
    problem (tests/mlo/test_hypergrad.py), 2 real + 2 pseudo pairs, and the recipe's state."""
    cfg = compose("train", ["profile=debug", "data.image_size=16", "generator.model.dropout=0",
                            "generator.model.base_width=4", "generator.model.max_width=8",
                            "generator.discriminator.base_width=4",
                            "generator.discriminator.n_layers=1"])  # fmt: skip
    torch.manual_seed(0)
    recipe = build_recipe(cfg.generator, DataSpec.from_config(cfg), CPU, lr=1e-2)
    recipe.generator.double()
    recipe.discriminator.double()
    recipe.gan_loss = ExactLSGAN()
    if optimizer == "sgd":
        recipe.g_optimizer = torch.optim.SGD(recipe.weight_parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(3)
    masks = (torch.rand(4, 1, 16, 16, generator=gen) > 0.5).double()
    images = (torch.rand(4, 1, 16, 16, generator=gen) * 2 - 1).double()
    for _ in range(3):  # moments of a generator that has trained a little, not Adam's first step
        recipe.generator_update(masks, images, recipe.generator(masks), weights=pair_weights(0.7))
    _, problem = tiny_problem(1)
    state = copy.deepcopy(
        [recipe.generator.state_dict(), recipe.discriminator.state_dict(),
         recipe.g_optimizer.state_dict()]
    )  # fmt: skip
    return recipe, problem, masks, images, state


def restore(recipe, state) -> None:
    generator, discriminator, optimizer = copy.deepcopy(state)
    recipe.generator.load_state_dict(generator)
    recipe.discriminator.load_state_dict(discriminator)
    recipe.g_optimizer.load_state_dict(optimizer)


def val_after_step(setup, w: float) -> float:
    """f(w) = L_val(W'(theta'(w))): the recipe's G step with pseudo weight w, then the
    segmenter's look-ahead on the generator's images, evaluated directly."""
    recipe, problem, masks, images, state = setup
    restore(recipe, state)
    recipe.generator_update(masks, images, recipe.generator(masks), weights=pair_weights(w))
    return look_ahead_val_loss(recipe.generator, problem)


def analytic(setup, w: float) -> float:
    """<h, d theta'/dw>: the tangent the G step keeps, and h from the upper step's estimator."""
    recipe, problem, masks, images, state = setup
    restore(recipe, state)
    fake = recipe.generator(masks)
    recipe.generator_update(masks, images, fake, weights=pair_weights(w), direction=DIRECTION)
    weights = recipe.weight_parameters()
    h, _ = hypergradient(
        "second_order", problem, lambda: recipe.generator(problem.new_masks), weights, XI
    )
    return float(trust_hypergradient(h, recipe.tangent))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_pseudo_weights_hypergradient_matches_the_numerical_derivative(optimizer):
    """fp64 throughout, h = 1e-4 in w: the relative error was 2e-8 (SGD) and 4e-8 (Adam; the
    exact derivative of its step, moments included), so 1e-6 leaves room for the central
    difference's O(h^2) term (at h = 1e-3: 1e-6 and 3e-6) and nothing for a lost factor or term
    (the SGD view -lr of an Adam step is off by orders of magnitude)."""
    setup, w, h = trust_setup(optimizer), 0.6, 1e-4
    numeric = (val_after_step(setup, w + h) - val_after_step(setup, w - h)) / (2 * h)
    exact = analytic(setup, w)
    assert abs(numeric) > 1e-9  # w does reach the validation loss
    assert abs(exact - numeric) / abs(numeric) < 1e-6, (exact, numeric)


def test_the_weight_stays_in_its_bounds_and_its_slope_is_dw_dbeta():
    trust = PseudoTrust(0.5, 2.0).double()
    assert trust.value == pytest.approx(0.5)
    h = 1e-6
    with torch.no_grad():
        trust.beta += h
    plus = trust.value
    with torch.no_grad():
        trust.beta -= 2 * h
    minus = trust.value
    with torch.no_grad():
        trust.beta += h
    assert trust.slope() == pytest.approx((plus - minus) / (2 * h), rel=1e-6)
    with torch.no_grad():
        trust.beta.fill_(60.0)
    assert 0.0 < trust.value <= 2.0
    with pytest.raises(ValueError, match="generator.pseudo_pairs.weight=2 must lie strictly"):
        PseudoTrust(2.0, 2.0)


LEARNED = [
    *GENSEG_FAST,
    "ssl=fixmatch",
    "n_unlabeled=6",
    "generator.pseudo_pairs.weight=0.5",
    "generator.pseudo_pairs.threshold=0",
    "generator.pseudo_pairs.learn_weight=true",  # last: LEARNED[:-1] is the same run with it off
]


def short_run(tmp_path, *overrides: str) -> tuple[dict, pd.DataFrame]:
    metrics = run_training(cfg_for(*overrides), tmp_path)
    return metrics, pd.read_csv(tmp_path / "history.csv")


def test_the_weight_moves_in_a_run_is_logged_and_a_twin_without_its_hypergradient_does_not(
    data_dir, tmp_path, monkeypatch
):
    metrics, history = short_run(tmp_path / "learned", *LEARNED)
    logged = history["mlo/pseudo_weight"].dropna()
    assert len(logged) >= 2 and history["hypergrad/pseudo_weight"].dropna().abs().max() > 0
    learned = metrics["pseudo_weight"]
    assert learned["initial"] == 0.5 and abs(learned["final"] - 0.5) > 1e-4
    assert learned["final"] == pytest.approx(float(logged.iloc[-1]))
    off, off_history = short_run(tmp_path / "off", *LEARNED[:-1])
    assert "pseudo_weight" not in off and "mlo/pseudo_weight" not in off_history
    assert off["generator"]["pseudo_pairs"]["weight"] == 0.5
    # a twin whose upper step drops <h, d theta'/dw>: the weight never moves, and the generator's
    # later updates differ from the learning run's
    monkeypatch.setattr(genseg_upper, "trust_hypergradient", lambda h, t: torch.zeros(()))
    twin, twin_history = short_run(tmp_path / "twin", *LEARNED)
    assert twin["pseudo_weight"]["final"] == pytest.approx(0.5, abs=1e-7)
    assert not history["loss/G_l1"].equals(twin_history["loss/G_l1"])


def test_a_run_that_learns_the_weight_resumes_exactly(data_dir, tmp_path):
    reliability.test_resumed_run_ends_exactly_like_an_uninterrupted_one(LEARNED, data_dir, tmp_path)
