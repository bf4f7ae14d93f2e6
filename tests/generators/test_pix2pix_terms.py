"""pix2pix's optional terms: feature matching on the critic's activations and the realism term
from unlabeled images (an image-only critic); each changes G's update only when switched on,
and the unlabeled images reach the critic in pre-training and in genseg's end-to-end steps."""

from __future__ import annotations

import pytest
import torch
from omegaconf import DictConfig

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.loop import build_method, prepare_run, run_training
from genseg_cli.engine.settings import check_value
from genseg_cli.generators.base import build_recipe
from genseg_cli.generators.pix2pix import Pix2PixRecipe

RUNTIME = resolve_runtime("cpu", "fp32", False)


def config(*overrides: str) -> DictConfig:
    return compose("train", ["profile=debug", "data.image_size=32", *overrides])


def recipe(*overrides: str) -> Pix2PixRecipe:
    cfg = config(*overrides)
    torch.manual_seed(0)
    return build_recipe(cfg.generator, DataSpec.from_config(cfg), RUNTIME, lr=1e-3)


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """masks, images, unlabeled images (2 each, 32 px, grey)."""
    gen = torch.Generator().manual_seed(seed)
    masks = (torch.rand(2, 1, 32, 32, generator=gen) > 0.5).float()
    images = torch.rand(2, 1, 32, 32, generator=gen) * 2 - 1
    return masks, images, torch.rand(2, 1, 32, 32, generator=gen) * 2 - 1


def g_weights_after_one_step(r: Pix2PixRecipe, unlabeled: torch.Tensor | None) -> list:
    masks, images, _ = batch()
    torch.manual_seed(2)  # dropout draws
    r.train_step(masks, images, r.synthesise(masks), unlabeled)
    return [p.detach().clone() for p in r.generator.parameters()]


def test_the_optional_terms_leave_the_initial_networks_as_they_were():
    plain, both = recipe(), recipe("generator.lambda_fm=10", "generator.unlabeled_realism=1")
    assert plain.image_critic is None and both.image_critic is not None
    assert set(both.networks()) == {"generator", "discriminator", "image_critic"}
    for name in ("generator", "discriminator"):
        for a, b in zip(
            plain.networks()[name].parameters(), both.networks()[name].parameters(), strict=True
        ):
            assert torch.equal(a, b)


def test_feature_matching_is_the_mean_l1_of_the_critics_activations_and_moves_g():
    r = recipe("generator.lambda_fm=10")
    masks, images, _ = batch()
    fake = r.synthesise(masks)
    with torch.no_grad():
        real = r.discriminator.features(masks, images)[:-1]
        synthetic = r.discriminator.features(masks, fake)[:-1]
    expected = torch.stack([(s - t).abs().mean() for s, t in zip(synthetic, real, strict=True)])
    # D's update comes first in train_step; the G update alone sees these critic weights
    logs = r.generator_update(masks, images, fake)
    assert logs["loss/G_fm"] == pytest.approx(float(expected.mean()), rel=1e-5)
    off = g_weights_after_one_step(recipe(), None)
    on = g_weights_after_one_step(recipe("generator.lambda_fm=10"), None)
    assert any(not torch.equal(a, b) for a, b in zip(off, on, strict=True))


def test_the_realism_critic_learns_from_unlabeled_images_and_pushes_g():
    r = recipe("generator.unlabeled_realism=1")
    before = [p.detach().clone() for p in r.image_critic.parameters()]
    masks, images, unlabeled = batch()
    logs = r.train_step(masks, images, r.synthesise(masks), unlabeled)
    assert {"loss/D_unlabeled", "loss/G_unlabeled"} <= set(logs)
    moved = [
        not torch.equal(a, p) for a, p in zip(before, r.image_critic.parameters(), strict=True)
    ]
    assert any(moved)
    # the same step without unlabeled images: the critic is untouched and G moves otherwise
    without = recipe("generator.unlabeled_realism=1")
    with_images = recipe("generator.unlabeled_realism=1")
    critic = [p.detach().clone() for p in without.image_critic.parameters()]
    a = g_weights_after_one_step(without, None)
    assert all(
        torch.equal(c, p) for c, p in zip(critic, without.image_critic.parameters(), strict=True)
    )
    b = g_weights_after_one_step(with_images, unlabeled)
    assert any(not torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_pretraining_hands_the_pools_unlabeled_images_to_the_critic(data_dir, tmp_path):
    seen: list[tuple] = []
    original = Pix2PixRecipe.image_critic_update

    def spy(self, unlabeled, fake):
        seen.append(tuple(unlabeled.shape))
        return original(self, unlabeled, fake)

    cfg = config(
        "method=separate",
        "method.pretrain.steps=3",
        "method.pretrain.cache_dir=null",
        "evaluation.tstr_steps=0",
        "trainer.precision=fp32",
        "generator.unlabeled_realism=1",
        "n_unlabeled=5",
        f"paths.data_dir={data_dir}",
    )
    Pix2PixRecipe.image_critic_update = spy
    try:
        run_training(cfg, tmp_path)
    finally:
        Pix2PixRecipe.image_critic_update = original
    assert seen == [(2, 1, 32, 32)] * 3  # one batch of the pool's images per pre-training step


def test_genseg_with_an_objective_feeds_the_critic_in_every_end_to_end_step(data_dir):
    cfg = config(
        "method=genseg",
        "ssl=fixmatch",
        "n_unlabeled=5",
        "trainer.precision=fp32",
        "generator.unlabeled_realism=1",
        f"paths.data_dir={data_dir}",
    )
    run = prepare_run(cfg)
    masks, images, unlabeled = batch()
    fake = run.method.synthesise(masks)
    got = run.method.recipe.update(
        masks, images, fake, run.method.unlabeled_images({"unlabeled_image": unlabeled})
    )
    assert "loss/D_unlabeled" in got
    plain = build_method(config("method=genseg", "ssl=fixmatch"), RUNTIME)
    fake = plain.synthesise(masks)
    assert "loss/D_unlabeled" not in plain.recipe.update(masks, images, fake, unlabeled)


def test_a_realism_term_without_unlabeled_images_is_refused_before_any_work(data_dir):
    cfg = config(
        "method=separate",
        "generator.unlabeled_realism=1",
        "n_unlabeled=0",
        f"paths.data_dir={data_dir}",
    )
    with pytest.raises(GensegError, match="generator.unlabeled_realism=1.*n_unlabeled=0"):
        prepare_run(cfg)


def test_negative_term_weights_are_refused():
    for key in ("generator.lambda_fm", "generator.unlabeled_realism"):
        with pytest.raises(GensegError, match=key):
            check_value(key, -1.0)
        check_value(key, 0.0)  # 0 turns the term off
