"""Generator recipes: a recipe defined here, outside the package, trains `separate` and `genseg`
through the config alone; the pix2pix recipe keeps its contract (freeze, parameter groups)."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from genseg_cli.core.config import compose
from genseg_cli.core.runtime import forked_rng, resolve_runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.loop import run_training
from genseg_cli.engine.restore import load_generator, load_run
from genseg_cli.generators.base import (
    PREVIEW_SEED,
    GeneratorRecipe,
    build_recipe,
)

CALLS: dict[str, int] = {"train_step": 0}


class TinyRecipe(GeneratorRecipe):
    """One 1x1 convolution and a bias the upper level may learn: the smallest real recipe."""

    name = "tiny"

    def __init__(self, *, config, spec: DataSpec, runtime, lr: float) -> None:
        super().__init__(config=config, spec=spec, runtime=runtime, lr=lr)
        conv = nn.Conv2d if spec.dims == 2 else nn.Conv3d
        self.generator = nn.Sequential(
            conv(spec.mask_channels, spec.image_channels, 1), nn.Tanh()
        ).to(runtime.device)
        self.optimizer = torch.optim.SGD(self.generator.parameters(), lr=self.lr)

    def train_step(self, masks: Tensor, images: Tensor, fake: Tensor) -> dict[str, float]:
        CALLS["train_step"] += 1
        self.optimizer.zero_grad()
        loss = (fake - images).abs().mean()
        loss.backward()
        self.optimizer.step()
        return {"loss/G_l1": float(loss.detach())}

    def set_learning_rate(self, lr: float) -> None:
        self.optimizer.param_groups[0]["lr"] = lr

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def upper_parameters(self) -> list[nn.Parameter]:
        return [self.generator[0].bias]  # genseg's architecture step moves these


TINY = [f"generator._target_={__name__}.TinyRecipe", "generator.name=tiny"]
FAST = [
    "profile=debug",
    "trainer.precision=fp32",
    "method.pretrain.steps=2",
    "evaluation.tstr_steps=2",
    "method.pretrain.cache_dir=null",
    "mlo.arch_every=1",
]


@pytest.mark.parametrize("method", ["separate", "genseg"])
def test_a_recipe_from_outside_the_package_trains_a_method(method, data_dir, tmp_path):
    CALLS["train_step"] = 0
    cfg = compose("train", [f"method={method}", *FAST, *TINY, f"paths.data_dir={data_dir}"])
    metrics = run_training(cfg, tmp_path)
    assert metrics["generator"]["name"] == "tiny"
    # separate: 2 pre-training steps; genseg: those plus one per training step (4)
    assert CALLS["train_step"] == (2 if method == "separate" else 6)
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (tmp_path / "status.json").write_text(json.dumps({"status": "done"}))
    generator = load_generator(load_run(tmp_path, device="cpu"))
    assert isinstance(generator[0], nn.Conv2d) and not generator.training


def shape_2d() -> DataSpec:
    return DataSpec.from_config(compose("train", ["profile=debug", "data.image_size=32"]))


def test_the_pix2pix_recipe_is_the_default_for_configs_without_a_target():
    """generator.pt files written before recipes had no _target_: they are pix2pix."""
    config = compose("train", ["profile=debug"]).generator
    config = OmegaConf.create({k: v for k, v in config.items() if k != "_target_"})
    recipe = build_recipe(config, shape_2d(), resolve_runtime("cpu", "fp32", False), lr=1e-3)
    assert type(recipe).__name__ == "Pix2PixRecipe" and set(recipe.networks()) == {
        "generator",
        "discriminator",
    }


def test_frozen_pix2pix_keeps_dropout_as_noise_and_stops_learning():
    config = compose("train", ["profile=debug"]).generator
    recipe = build_recipe(config, shape_2d(), resolve_runtime("cpu", "fp32", False), lr=1e-3)
    recipe.freeze()
    masks = (torch.rand(2, 1, 32, 32) > 0.5).float()
    first, second = recipe.synthesise(masks), recipe.synthesise(masks)
    assert not torch.equal(first, second)  # dropout still draws
    assert not any(p.requires_grad for p in recipe.generator.parameters())
    norms = [m for m in recipe.generator.modules() if isinstance(m, nn.BatchNorm2d)]
    running = [m.running_mean.clone() for m in norms]
    assert norms and all(m.training for m in norms)  # batch statistics, as genseg's G uses
    assert all(torch.equal(a, m.running_mean) for a, m in zip(running, norms, strict=True))


def test_separate_and_genseg_synthesise_in_the_same_batch_norm_mode():
    """genseg against separate must measure the feedback alone: given the same weights and
    dropout draw, the frozen G of separate makes the images genseg's G makes."""
    config = compose("train", ["profile=debug"]).generator
    runtime = resolve_runtime("cpu", "fp32", False)
    torch.manual_seed(0)
    frozen = build_recipe(config, shape_2d(), runtime, lr=1e-3)
    torch.manual_seed(0)
    training = build_recipe(config, shape_2d(), runtime, lr=1e-3)
    frozen.freeze()
    training.generator.train()
    masks = (torch.rand(2, 1, 32, 32) > 0.5).float()
    torch.manual_seed(1)
    first = frozen.synthesise(masks)
    torch.manual_seed(1)
    assert torch.equal(first, training.synthesise(masks))


def test_previews_show_the_images_the_segmenter_gets_and_change_nothing():
    """Preview grids and the grid score judge the synthetic images: they must be the ones the
    segmenter trains on (batch statistics and dropout in batches of the run's size), not the
    eval-mode images, and drawing them must leave the run's streams and statistics alone."""
    config = compose("train", ["profile=debug"]).generator
    spec = shape_2d()
    runtime = resolve_runtime("cpu", "fp32", False)
    recipe = build_recipe(config, spec, runtime, lr=1e-3)
    masks = (torch.rand(2 * spec.batch_size + 1, 1, 32, 32) > 0.5).float()
    norms = [m for m in recipe.generator.modules() if isinstance(m, nn.BatchNorm2d)]
    kept = [(m.running_mean.clone(), int(m.num_batches_tracked)) for m in norms]
    torch.manual_seed(3)
    first = recipe.preview(masks)
    after = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(1))  # as if no preview had drawn
    assert all(
        torch.equal(mean, m.running_mean) and count == int(m.num_batches_tracked)
        for (mean, count), m in zip(kept, norms, strict=True)
    )
    assert torch.equal(first, recipe.preview(masks))  # the same draw at every preview
    recipe.freeze()
    size = spec.batch_size
    with forked_rng(runtime.device, PREVIEW_SEED):
        synthesis = [recipe.synthesise(masks[i : i + size]) for i in range(0, len(masks), size)]
    assert torch.equal(recipe.preview(masks), torch.cat(synthesis))


def test_searchable_pix2pix_offers_alpha_to_the_upper_level_and_fixed_does_not():
    runtime = resolve_runtime("cpu", "fp32", False)
    searchable = compose("train", ["profile=debug"]).generator
    fixed = compose("train", ["profile=debug", "generator=pix2pix_fixed"]).generator
    assert build_recipe(searchable, shape_2d(), runtime, lr=1e-3).upper_parameters()
    assert not build_recipe(fixed, shape_2d(), runtime, lr=1e-3).upper_parameters()


def test_exact_synthesis_stays_in_the_graph():
    config = compose("train", ["profile=debug"]).generator
    recipe = build_recipe(config, shape_2d(), resolve_runtime("cpu", "fp32", False), lr=1e-3)
    images = recipe.synthesise((torch.rand(2, 1, 32, 32) > 0.5).float(), exact=True)
    images.mean().backward()
    assert all(a.grad is not None for a in recipe.upper_parameters())


def test_genseg_refuses_a_generator_that_gives_the_upper_level_nothing():
    from genseg_cli.core.errors import GensegError
    from genseg_cli.engine.loop import build_method

    cfg = compose("train", ["profile=debug", "method=genseg", "generator=pix2pix_fixed"])
    with pytest.raises(GensegError, match="mlo.learn_synthetic_weight=true"):
        build_method(cfg, resolve_runtime("cpu", "fp32", False))
    learned = compose(
        "train",
        [
            "profile=debug",
            "method=genseg",
            "generator=pix2pix_fixed",
            "mlo.learn_synthetic_weight=true",
        ],
    )
    assert build_method(learned, resolve_runtime("cpu", "fp32", False)).learned_weight is not None
