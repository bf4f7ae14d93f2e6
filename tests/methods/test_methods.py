"""Separate and GenSeg on real JSRT images: the shared method contract (tests/methods/tester.py)
plus what only 2D runs exercise (photometric jitter, the pre-training cache, a learned lambda)."""

import json

import pandas as pd
import pytest
import torch

from genseg_cli.data.batches import whole_set
from genseg_cli.data.streams import GENERATOR_PAIRS
from genseg_cli.engine.loop import build_method, run_training, training_context
from genseg_cli.engine.step_batches import step_batches
from tests.methods.tester import CPU, MethodTester

FAST = [
    "profile=debug",
    "trainer.precision=fp32",
    "method.pretrain.steps=3",
    "evaluation.tstr_steps=2",
    "method.pretrain.cache_dir=null",
    "generator.model.base_width=8",
    "generator.discriminator.base_width=8",
]
JITTER = "method.synthetic_jitter={brightness:0.2,contrast:0.2,p:1.0}"
LEARN_WEIGHT = "mlo.learn_synthetic_weight=true"
SKIP_AFFINE = "generator.skip_augment=[albumentations.Affine]"
# augment=standard with the affine move as its only active transform (flip and contrast off)
ONLY_AFFINE = [
    "augment.pipeline.transforms.0.p=0",
    "augment.pipeline.transforms.1.p=1",
    "augment.pipeline.transforms.2.p=0",
]


class TestJsrt(MethodTester):
    dataset, n_labeled, overrides = "jsrt", 9, FAST

    def test_jittered_synthetic_images_keep_the_hypergradient(self, data, tmp_path):
        """With the photometric jitter on, the synthetic images the upper level sees are jittered
        and still in the autograd graph: the hypergradient is non-zero and alpha moves."""
        method, batches = self.prepared("genseg", data, tmp_path, JITTER)
        assert method.jitter is not None and method.jitter.p == 1.0
        alphas = self.alphas(method)
        losses = method.train_step(batches[0])
        assert losses["hypergrad/alpha_norm"] > 0
        assert not any(torch.equal(a, b) for a, b in zip(alphas, self.alphas(method), strict=True))
        torch.manual_seed(0)
        params = method.draw_jitter(4)
        assert not torch.equal(params[0], torch.ones(4))  # p=1: every image is changed

    def test_the_generator_learns_from_pairs_without_the_transforms_it_skips(self, data, tmp_path):
        """With generator.skip_augment, pre-training and genseg's GAN step draw pairs without the
        named transforms: with the affine move as the only active one, the generator's images are
        the train images as they are, while the segmenter's are moved."""
        torch.manual_seed(0)
        cfg = self.config("genseg", SKIP_AFFINE, *ONLY_AFFINE)
        method = build_method(cfg, CPU)
        assert GENERATOR_PAIRS in method.streams
        originals = whole_set(data.train, method.spec)["image"]

        def unmoved(images: torch.Tensor) -> list[bool]:
            return [any(torch.equal(image, o) for o in originals) for image in images]

        context = training_context(cfg, data, tmp_path)
        assert all(unmoved(next(iter(context.real_batches(1)))["image"]))
        batch = next(step_batches(cfg, method, data, 1))
        assert all(unmoved(batch["generator_image"])) and not any(unmoved(batch["image"]))
        seen, update = {}, method.recipe.update

        def spy(masks, images, fake, unlabeled=None, weights=None):
            seen["images"] = images
            return update(masks, images, fake, unlabeled, weights)

        method.recipe.update = spy
        method.prepare(context)
        method.train_step(batch)
        assert torch.equal(seen["images"], batch["generator_image"])

    @pytest.mark.parametrize("name", ["separate", "genseg"])
    def test_pretrained_generator_is_reused_from_the_cache(self, name, data, tmp_path):
        """A run from the cache goes on exactly as the run that pre-trained: the pre-training
        draws nothing from the global random streams that the rest of the run uses, and the
        cache holds G's and D's optimiser moments, which genseg's end-to-end phase goes on with."""
        cache = f"method.pretrain.cache_dir={tmp_path / 'cache'}"
        first = run_training(self.config(name, cache), tmp_path / "a")
        second = run_training(self.config(name, cache), tmp_path / "b")
        assert first["generator"]["pretrain_cached"] is False
        assert second["generator"]["pretrain_cached"] is True
        assert first["test"] == second["test"]
        history = [pd.read_csv(tmp_path / run / "history.csv") for run in ("a", "b")]
        pd.testing.assert_frame_equal(*history)

    @pytest.mark.parametrize("generator", ["searchable", "pix2pix_fixed"])
    def test_learned_synthetic_weight_follows_the_hypergradient(self, generator, data, tmp_path):
        """With mlo.learn_synthetic_weight, an upper step moves lambda (also when the generator
        has no architecture to search), and the next segmenter update uses the moved value."""
        method, batches = self.prepared(
            "genseg", data, tmp_path, LEARN_WEIGHT, f"generator={generator}"
        )
        assert method.current_synthetic_weight() == pytest.approx(1.0)
        losses = method.train_step(batches[0])
        assert losses["hypergrad/synthetic_weight"] != 0.0
        learned = losses["mlo/synthetic_weight"]
        assert learned != pytest.approx(1.0) and 0.0 < learned < 2.0
        assert ("hypergrad/alpha_norm" in losses) == (generator == "searchable")

        used = []
        update = method.segmentation_update

        def spy(*args, **kwargs):
            used.append(args[4])  # synthetic_weight
            return update(*args, **kwargs)

        method.segmentation_update = spy
        method.train_step(batches[1])
        assert used == [pytest.approx(learned)]

    def test_learned_synthetic_weight_is_logged_and_reported(self, data, tmp_path):
        cfg = self.config("genseg", "mlo.arch_every=2", LEARN_WEIGHT)
        metrics = run_training(cfg, tmp_path)
        history = pd.read_csv(tmp_path / "history.csv")
        logged = history["mlo/synthetic_weight"].dropna()
        assert len(logged) == cfg.trainer.steps // 2
        on_disk = json.loads((tmp_path / "metrics.json").read_text())
        assert on_disk["synthetic_weight"]["initial"] == 1.0
        assert on_disk["synthetic_weight"]["final"] == pytest.approx(logged.iloc[-1])
        assert metrics["synthetic_weight"] == on_disk["synthetic_weight"]
