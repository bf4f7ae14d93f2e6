"""The appearance code of the pix2pix recipe (`generator.model.style_dim`, a cVAE-GAN as in
BicycleGAN): off, the recipe is today's to the bit; on, synthesis varies for a fixed mask, E
learns with G, the encoded reconstruction carries the image's appearance, and runs, resumes,
previews and the pre-training cache handle the encoder."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

import tests.engine.test_reliability as reliability
from genseg_cli.core.config import compose
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.loop import run_training
from genseg_cli.generators import style_code
from genseg_cli.generators.base import build_recipe
from genseg_cli.generators.pix2pix import Pix2PixRecipe
from genseg_cli.methods.synthetic import cache_settings
from genseg_cli.mlo.replay import GeneratorPass, replay
from genseg_cli.nets.style import StyleEncoder
from tests.engine.test_reliability import GENSEG_FAST

CPU = resolve_runtime("cpu", "fp32", False)
STYLE = "generator.model.style_dim=4"
# 16 px: a one-layer critic (three layers need 24 px)
TINY = ["data.image_size=16", "generator.discriminator.n_layers=1"]


def config(*overrides: str) -> DictConfig:
    return compose("train", ["profile=debug", *TINY, *overrides])


def recipe(*overrides: str, lr: float = 1e-3) -> Pix2PixRecipe:
    cfg = config(*overrides)
    torch.manual_seed(0)
    return build_recipe(cfg.generator, DataSpec.from_config(cfg), CPU, lr=lr)


def batch(n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    masks = (torch.rand(n, 1, 16, 16, generator=gen) > 0.5).float()
    return masks, torch.rand(n, 1, 16, 16, generator=gen) * 2 - 1


def first_step(r: Pix2PixRecipe) -> dict[str, float]:
    masks, images = batch()
    torch.manual_seed(2)  # the noise of this step (dropout, codes)
    return r.train_step(masks, images, r.synthesise(masks))


def same(a: object, b: object) -> bool:
    """Equal nested states: tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_style_dim_0_is_the_recipe_without_the_keys():
    without = recipe("~generator.model.style_dim", "~generator.lambda_kl")
    off = recipe()
    assert off.style is None and set(off.stateful()) == set(without.stateful())
    for name, net in without.networks().items():
        a, b = net.state_dict(), off.networks()[name].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert first_step(without) == first_step(off)
    assert same(without.state_dict(), off.state_dict())  # networks and optimisers after it
    assert "style_dim" not in off.describe()


# the first two steps' losses of `recipe()` before the code existed (fp32, CPU): update them only
# with a deliberate change of the pix2pix step
BEFORE = [
    {"loss/D": 0.52333081, "loss/G_gan": 0.82867706, "loss/G_l1": 0.51132965},
    {"loss/D": 0.42425215, "loss/G_gan": 0.67509884, "loss/G_l1": 0.48049706},
]


def test_style_dim_0_trains_as_the_recipe_did_before_the_code():
    r = recipe()
    for before in BEFORE:
        assert first_step(r) == pytest.approx(before, rel=1e-5)


def test_the_encoder_draws_its_weights_after_the_generator_and_the_critic():
    """So a run with the code starts from the G and D its seed gives without an encoder."""
    cfg = config(STYLE)
    spec = DataSpec.from_config(cfg)
    torch.manual_seed(0)
    generator = instantiate(cfg.generator.model, in_channels=1, out_channels=1, image_size=16)
    critic = instantiate(cfg.generator.discriminator, in_channels=2, dims=2)
    torch.manual_seed(0)
    r = build_recipe(cfg.generator, spec, CPU, lr=1e-3)
    for own, alone in ((r.generator, generator), (r.discriminator, critic)):
        for a, b in zip(own.parameters(), alone.parameters(), strict=True):
            assert torch.equal(a, b)


def test_the_encoder_is_kept_with_the_networks_but_is_no_upper_level_weight():
    r = recipe(STYLE)
    assert isinstance(r.networks()["style_encoder"], StyleEncoder)
    assert {"style_encoder", "style_optimizer"} <= set(r.stateful())
    encoder = {id(p) for p in r.style.encoder.parameters()}
    assert encoder.isdisjoint(id(p) for p in r.weight_parameters())
    assert r.describe()["style_dim"] == 4 and r.describe()["lambda_kl"] == 0.01


def test_synthesis_draws_a_new_code_per_call_for_the_same_mask():
    r = recipe(STYLE, "generator.model.dropout=0")
    masks, _ = batch()
    assert not torch.allclose(r.synthesise(masks), r.synthesise(masks))
    exact = r.synthesise(masks, exact=True)  # the hypergradient's path: in the graph
    assert exact.requires_grad and exact.dtype == torch.float32


def test_genseg_replays_the_codes_of_the_pass_the_segmenter_learned_from():
    """The upper step makes the synthetic images again from the recorded random state
    (`genseg_cli.mlo.replay`): the codes come back with it, like dropout's masks."""
    r = recipe(STYLE)
    real, new = batch(2)[0], batch(3)[0]
    recorded = GeneratorPass.record(real, torch.device("cpu"))
    both = r.synthesise(torch.cat([real, new]))
    again = replay(r.generator, lambda m: r.synthesise(m, exact=True), new, recorded)
    assert torch.equal(again, both[2:])


def test_previews_use_the_same_codes_and_leave_torchs_stream_alone():
    r = recipe(STYLE)
    masks, _ = batch()
    torch.manual_seed(5)
    first = r.preview(masks)
    assert torch.equal(first, r.preview(masks))  # no reseeding between the two
    after = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(1))  # as if no preview had drawn


def test_the_encoder_learns_with_g_and_every_term_is_finite():
    r = recipe(STYLE)
    before = [p.detach().clone() for p in r.style.encoder.parameters()]
    logs = first_step(r)
    assert {"loss/G_kl", "loss/G_l1", "loss/G_gan_prior", "loss/G_l1_prior"} <= set(logs)
    assert all(math.isfinite(v) for v in logs.values())
    assert all(p.grad is not None for p in r.style.encoder.parameters())
    after = r.style.encoder.parameters()
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_the_new_terms_are_weighted_means_over_the_pairs():
    r = recipe(STYLE)
    masks, images = batch(4)
    rec = r.style.reconstruct(r.generator, masks, images)
    weights = torch.tensor([1.0, 1.0, 0.5, 0.0])
    per_pair = style_code.kl_per_pair(rec.mu, rec.logvar).detach()
    expected = (weights * per_pair).sum() / weights.sum()
    assert float(r.style.kl(rec, weights).detach()) == pytest.approx(float(expected), rel=1e-6)
    fake = r.synthesise(masks)
    _, logs = r.generator_loss(masks, images, fake, weights=weights, rec=rec)
    l1 = ((rec.images - images).abs().flatten(1).mean(1) * weights).sum() / weights.sum()
    assert logs["loss/G_l1"] == pytest.approx(float(l1), rel=1e-6)
    plain, _ = r.generator_loss(masks, images, fake, rec=rec)
    weighted, _ = r.generator_loss(masks, images, fake, weights=weights, rec=rec)
    assert float(plain.detach()) != pytest.approx(float(weighted.detach()))


def test_the_losses_are_the_cvae_gans():
    """G: adversarial(rec) + lambda_l1 * L1(rec) + adversarial(fake) + lambda_kl * KL; D: real
    pairs against the mean of its terms on rec and on fake."""
    r = recipe(STYLE)
    masks, images = batch()
    fake = r.synthesise(masks)
    rec = r.style.reconstruct(r.generator, masks, images)
    total, logs = r.generator_loss(masks, images, fake, rec=rec)
    expected = (logs["loss/G_gan"] + 100.0 * logs["loss/G_l1"] + logs["loss/G_gan_prior"]
                + 0.01 * logs["loss/G_kl"])  # fmt: skip
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        score = {name: r.discriminator(masks, x) for name, x in
                 (("real", images), ("rec", rec.images), ("fake", fake))}  # fmt: skip
    synthetic = 0.5 * (r.gan_loss(score["rec"], False) + r.gan_loss(score["fake"], False))
    d = 0.5 * (r.gan_loss(score["real"], True) + synthetic)
    assert r.discriminator_update(masks, images, fake, rec=rec.images) == pytest.approx(
        float(d), rel=1e-5
    )


def test_the_code_carries_the_images_appearance():
    """One mask, four images that differ only in brightness: without a code, G can only learn
    their mean; after a few steps, G from E's code of each image is far closer to it than G
    from a random code (0.11 against 0.75 when measured)."""
    r = recipe("generator.model.style_dim=2", "generator.model.dropout=0", lr=2e-3)
    masks = torch.zeros(4, 1, 16, 16)
    masks[:, :, 4:12, 4:12] = 1
    levels = torch.tensor([-0.8, -0.3, 0.3, 0.8]).view(4, 1, 1, 1)
    images = (levels + 0.1 * masks).expand(4, 1, 16, 16).contiguous()
    for _ in range(20):
        r.train_step(masks, images, r.synthesise(masks))
    with torch.no_grad():
        mu, _ = r.style.encoder(images)
        encoded = (r.generator(masks, mu) - images).abs().mean()
        prior = (r.synthesise(masks) - images).abs().mean()
    assert encoded < 0.5 * prior, (encoded, prior)


def test_the_cache_key_has_the_code_only_when_it_is_on():
    plain = cache_settings(config().generator)
    assert "style_dim" not in plain["model"] and "lambda_kl" not in plain
    without = cache_settings(config("~generator.model.style_dim", "~generator.lambda_kl").generator)
    assert plain == without  # a cache made before the code existed stays valid
    on = cache_settings(config(STYLE).generator)
    assert on != plain and on["model"]["style_dim"] == 4 and on["lambda_kl"] == 0.01
    assert cache_settings(config(STYLE, "generator.lambda_kl=0.1").generator) != on


RUN = ["profile=debug", "data.image_size=32", "trainer.precision=fp32", "trainer.steps=2",
       "evaluation.tstr_steps=2", "method.pretrain.steps=2", "method.pretrain.cache_dir=null",
       STYLE]  # fmt: skip


def test_a_separate_run_with_the_code_trains_generates_and_describes_it(data_dir, tmp_path):
    from omegaconf import OmegaConf

    from genseg_cli.stages.generate import generate_pairs

    run = tmp_path / "run"
    cfg = compose("train", [*RUN, "method=separate", f"paths.data_dir={data_dir}"])
    metrics = run_training(cfg, run)
    assert metrics["generator"]["style_dim"] == 4
    assert "style_encoder" in torch.load(run / "checkpoints" / "generator.pt", weights_only=True)
    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (run / "status.json").write_text(json.dumps({"status": "done"}))
    out = generate_pairs([f"run_dir={run}", "n=2", f"out={tmp_path / 'pairs'}", "device=cpu"])
    assert len(list((out / "images").glob("*.png"))) == 2


def test_a_genseg_run_logs_the_codes_terms(data_dir, tmp_path):
    cfg = compose("train", [*RUN, *GENSEG_FAST, STYLE, f"paths.data_dir={data_dir}"])
    run_training(cfg, tmp_path)
    history = pd.read_csv(tmp_path / "history.csv")
    for column in ("loss/G_kl", "loss/G_l1", "loss/G_l1_prior"):
        assert history[column].dropna().size > 0, column


def test_a_run_with_the_code_resumes_exactly(data_dir, tmp_path):
    overrides = [*GENSEG_FAST, STYLE, "data.image_size=32", "generator.model.base_width=4"]
    reliability.test_resumed_run_ends_exactly_like_an_uninterrupted_one(
        overrides, data_dir, tmp_path
    )
