"""A shared tester for training methods (smp-style): every subclass names one dataset and gets
the same checks, so 2D images and 3D volumes are held to one contract.

A subclass sets `dataset`, `n_labeled`, `overrides` (fast settings) and `expected_outputs`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.data.batches import training_batches
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.run_data import load_run_data
from genseg_cli.engine.loop import build_method, run_training, training_context

CPU = resolve_runtime("cpu", "fp32", False)


class MethodTester:
    dataset: str
    n_labeled: int
    overrides: list[str]

    @pytest.fixture(scope="class")
    def data(self):
        from tests.conftest import DATA_DIR

        spec = dataset_spec(self.dataset)
        if not (DATA_DIR / self.dataset).is_dir():
            pytest.skip(f"real dataset {self.dataset} not found")
        return load_run_data(spec, DATA_DIR, self.n_labeled, 0, 0.2, with_ood=False)

    def config(self, method_name: str, *more: str):
        fast = [o for o in self.overrides if method_name != "baseline" or "pretrain" not in o]
        return compose("train", [f"dataset={self.dataset}", f"method={method_name}", *fast, *more])

    def prepared(self, method_name: str, data, tmp_path: Path, *more: str):
        """A method after prepare() (pre-training done) and its first three training batches;
        the global seed is fixed first, so two calls build identical methods."""
        torch.manual_seed(0)
        cfg = self.config(method_name, "mlo.arch_every=1", *more)
        method = build_method(cfg, CPU)
        method.prepare(training_context(cfg, data, tmp_path))
        batches = training_batches(
            data.train, method.spec, 3, 0, cfg.augment, cfg.get("mask_augment"), True
        )
        return method, list(batches)

    @staticmethod
    def generator_output(method, masks) -> torch.Tensor:
        method.generator.eval()
        with torch.no_grad():
            out = method.generator(masks).clone()
        method.generator.train()
        return out

    @staticmethod
    def alphas(method) -> list[torch.Tensor]:
        return [a.detach().clone() for a in method.recipe.upper_parameters()]

    # ----- the contract ----------------------------------------------------------------------
    def test_upper_step_moves_alpha_and_the_generator_beyond_the_gan_step(self, data, tmp_path):
        """Twins from one seed, one with the upper step and one without: alpha moves only in
        the first, and its generator differs from the twin's (the GAN step alone changes G
        too, so comparing with the generator before the step would prove nothing)."""
        results = {}
        for every in (1, 1000):
            torch.manual_seed(1)
            method, batches = self.prepared("genseg", data, tmp_path, f"mlo.arch_every={every}")
            before = self.alphas(method)
            torch.manual_seed(2)
            losses = method.train_step(batches[0])
            moved = [
                not torch.equal(a, b) for a, b in zip(before, self.alphas(method), strict=True)
            ]
            results[every] = (losses, moved, self.generator_output(method, method.preview_masks))
        (with_upper, moved, out_upper), (without, still, out_plain) = results[1], results[1000]
        assert 0 < with_upper["hypergrad/alpha_norm"] < 1e3 and all(moved)
        assert "hypergrad/alpha_norm" not in without and not any(still)
        assert not torch.allclose(out_upper, out_plain)

    def test_the_upper_levels_synthetic_images_stay_in_the_graph(self, data, tmp_path):
        """What genseg's upper step differentiates through reaches every alpha: a .detach() or a
        uint8 round trip on that path (the public reference code's flaw) fails here."""
        method, batches = self.prepared("genseg", data, tmp_path)
        images = method._synthesise_for_upper(batches[0]["new_mask"])()
        alphas = method.recipe.upper_parameters()
        grads = torch.autograd.grad(images.float().square().mean(), alphas, allow_unused=True)
        assert grads and all(g is not None and float(g.abs().sum()) > 0 for g in grads)

    @staticmethod
    def segmenter_after_one_step(method, batch, change=None) -> list[torch.Tensor]:
        """The segmenter's weights after one training step from a fixed random state; `change`
        rewrites the synthetic pairs (images, masks) on their way into the segmenter's update."""
        if change is not None:
            update = method.segmentation_update

            def changed(images, masks, synthetic, new_masks, *args, **kwargs):
                synthetic, new_masks = change(synthetic, new_masks)
                return update(images, masks, synthetic, new_masks, *args, **kwargs)

            method.segmentation_update = changed
        torch.manual_seed(2)
        method.train_step(batch)
        return [p.detach().clone() for p in method.segmenter.parameters()]

    @pytest.mark.parametrize("method_name", ["separate", "genseg"])
    def test_the_synthetic_pairs_reach_the_segmenters_update(self, method_name, data, tmp_path):
        """Twin steps from one seed: the same step again gives the same segmenter, while other
        targets for the synthetic images (the masks inverted) or other images (negated) give
        another; dropping the synthetic pairs from the update, or their loss, fails here."""
        twins = {}
        changes = {
            "same": None,
            "again": None,
            "other masks": lambda s, m: (s, 1 - m),
            "other images": lambda s, m: (-s, m),
        }
        for name, change in changes.items():
            method, batches = self.prepared(method_name, data, tmp_path)
            twins[name] = self.segmenter_after_one_step(method, batches[0], change)
        same = [torch.equal(a, b) for a, b in zip(twins["same"], twins["again"], strict=True)]
        assert all(same)  # the step is deterministic: a difference below has a cause
        for name in ("other masks", "other images"):
            moved = [not torch.equal(a, b) for a, b in zip(twins["same"], twins[name], strict=True)]
            assert any(moved), name

    def test_the_upper_step_sees_the_images_the_segmenter_learned_from(self, data, tmp_path):
        """The upper step's synthetic images equal those of the segmenter's update (same batch
        for batch norm, same dropout draw), and making them again leaves the generator's
        running statistics as the training pass left them. G's learning rate is 0 here, so the
        GAN step between the two passes changes no weight."""
        method, batches = self.prepared("genseg", data, tmp_path, "method.end_to_end_lr=0")
        seen: dict[str, torch.Tensor] = {}
        update, upper, synthesise = (
            method.segmentation_update,
            method.upper_update,
            method._synthesise_for_upper,
        )

        def spy_update(images, masks, synthetic, *args, **kwargs):
            seen["trained"] = synthetic.detach().clone()
            return update(images, masks, synthetic, *args, **kwargs)

        def spy_upper(*args, **kwargs):
            seen["before"] = [b.clone() for b in method.generator.buffers()]
            out = upper(*args, **kwargs)
            seen["after"] = [b.clone() for b in method.generator.buffers()]
            return out

        def spy_synthesise(*args, **kwargs):
            run = synthesise(*args, **kwargs)

            def recorded():
                out = run()
                seen["upper"] = (out[0] if isinstance(out, tuple) else out).detach().clone()
                return out

            return recorded

        method.segmentation_update, method.upper_update = spy_update, spy_upper
        method._synthesise_for_upper = spy_synthesise
        torch.manual_seed(2)
        method.train_step(batches[0])
        assert "upper" in seen and seen["upper"].shape == seen["trained"].shape
        assert torch.allclose(seen["upper"], seen["trained"], atol=1e-6, rtol=0)
        assert seen["before"] and all(
            torch.equal(a, b) for a, b in zip(seen["before"], seen["after"], strict=True)
        )

    def test_separate_never_changes_the_generator_after_pretraining(self, data, tmp_path):
        method, batches = self.prepared("separate", data, tmp_path)
        state = {k: v.clone() for k, v in method.generator.state_dict().items()}
        for batch in batches[:2]:
            losses = method.train_step(batch)
        assert set(losses) == {"loss/seg"}
        assert all(torch.equal(state[k], v) for k, v in method.generator.state_dict().items())

    def test_tstr_trains_a_fresh_segmenter_on_the_generators_images_only(
        self, data, tmp_path, monkeypatch
    ):
        """Every TSTR step draws its images from the run's generator; the run's own segmenter
        is left as it was (the diagnostic never changes the run's results)."""
        from genseg_cli.engine.tstr import train_on_synthetic_test_on_real

        method, _ = self.prepared("separate", data, tmp_path)
        cfg = self.config("separate")
        own = {k: v.clone() for k, v in method.segmenter.state_dict().items()}
        calls = []
        pairs = method.synthetic_pairs
        monkeypatch.setattr(method, "synthetic_pairs", lambda m: calls.append(m.shape) or pairs(m))
        result = train_on_synthetic_test_on_real(cfg, method, data, steps=3)
        assert len(calls) == 3 and calls[0][0] == method.spec.batch_size
        assert result["test"]["n"] == len(data.test) and 0 <= result["test"]["dice_mean"] <= 1
        assert all(torch.equal(own[k], v) for k, v in method.segmenter.state_dict().items())

    @pytest.mark.parametrize("method_name", ["baseline", "separate", "genseg"])
    def test_short_real_run_writes_every_output(self, method_name, data, tmp_path):
        metrics = run_training(self.config(method_name, "mlo.arch_every=2"), tmp_path)
        assert metrics["test"]["n"] == len(data.test)
        assert metrics["run"]["start_weights"] is None  # random initialisation, recorded
        self.check_scores(metrics, tmp_path)
        for name in ("metrics.json", "history.csv", "per_image.csv", "splits.json"):
            assert (tmp_path / name).is_file(), name
        if method_name == "baseline":
            assert "tstr" not in metrics  # nothing synthetic to test
            return
        assert metrics["tstr"]["steps"] == 2 and 0 <= metrics["tstr"]["test"]["dice_mean"] <= 1
        for name in ("synthetic_start.png", "synthetic_end.png", "checkpoints/generator.pt"):
            assert (tmp_path / name).is_file(), name
        architecture = metrics["generator"]["architecture"]
        assert architecture and all(abs(sum(e["weights"]) - 1) < 1e-5 for e in architecture)
        if method_name == "genseg":
            assert list(pd.read_csv(tmp_path / "alpha.csv").step) == [2, 4]
            history = pd.read_csv(tmp_path / "history.csv")
            assert {"loss/D", "loss/G_gan", "loss/G_l1", "loss/seg", "loss/val_upper"} <= set(
                history
            )

    def check_scores(self, metrics: dict, run_dir: Path) -> None:
        """What a dimensionality adds to the scores (per-class columns in 3D)."""
