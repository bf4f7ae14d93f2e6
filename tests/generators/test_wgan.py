"""generator=wgan (genseg_cli.generators.wgan): a recipe that makes its own masks. Its pairs are
binary masks beside images in range, they reach the segmenter's update in method=separate, its
generator steps once per critic_steps critic steps, and `genseg generate` writes its pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from genseg_cli.core.config import compose
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.loop import run_training
from genseg_cli.generators.base import build_recipe
from genseg_cli.nets.wgan import up_steps
from tests.methods.tester import CPU, MethodTester

WGAN = [
    "profile=debug",
    "trainer.precision=fp32",
    "method=separate",
    "generator=wgan",
    "method.pretrain.steps=3",
    "method.pretrain.cache_dir=null",
    "evaluation.tstr_steps=2",
]


def recipe_for(*more: str):
    cfg = compose("train", [*WGAN, "data.image_size=32", *more])
    return build_recipe(cfg.generator, DataSpec.from_config(cfg), CPU, lr=1e-3)


def test_pairs_are_binary_masks_beside_images_in_range_whatever_masks_it_is_handed():
    torch.manual_seed(0)
    recipe = recipe_for()
    images = torch.rand(4, 1, 32, 32) * 2 - 1
    masks = (torch.rand(4, 1, 32, 32) > 0.7).float()
    for _ in range(10):  # two generator steps: one per 5 critic steps
        logs = recipe.pretrain_step(masks, images)
    assert "loss/G" in logs and int(next(iter(recipe.g_optimizer.state.values()))["step"]) == 2
    handed = torch.ones(3, 1, 32, 32)
    for exact in (False, True):
        made, made_masks = recipe.pairs(handed, exact=exact)
        assert made.shape == (3, 1, 32, 32) and made_masks.shape == (3, 1, 32, 32)
        assert made.min() >= -1 and made.max() <= 1
        assert set(made_masks.unique().tolist()) <= {0.0, 1.0}
        assert not torch.equal(made_masks, handed)  # its own masks, not the ones it was handed
    first, again = recipe.preview_pairs(handed), recipe.preview_pairs(handed)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))  # fixed noise


def test_the_networks_reach_any_model_size():
    assert [up_steps(s) for s in (64, 96, 100, 128, 30, 9)] == [4, 4, 2, 5, 1, 0]
    for size in (64, 100):
        recipe = recipe_for(f"data.image_size={size}")
        images, masks = recipe.pairs(torch.zeros(2, 1, size, size))
        assert images.shape == masks.shape == (2, 1, size, size)


class WganTester(MethodTester):  # the shared method tester's helpers, not its contract
    dataset, n_labeled, overrides = "jsrt", 9, [*WGAN[:2], *WGAN[3:]]


@pytest.fixture(scope="module")
def jsrt():
    from genseg_cli.data.registry import dataset_spec
    from genseg_cli.data.run_data import load_run_data
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real dataset jsrt not found")
    return load_run_data(dataset_spec("jsrt"), DATA_DIR, 9, 0, 0.2, with_ood=False)


def test_its_pairs_reach_the_segmenters_update(jsrt, tmp_path):
    """Twin steps from one seed: the same step again gives the same segmenter; the WGAN's
    pairs with their masks inverted or their images negated give another; and the masks the
    update learns are the WGAN's binary ones, not the drawn new masks."""
    tester, twins, seen = WganTester(), {}, {}
    changes = {
        "same": None,
        "again": None,
        "other masks": lambda s, m: (s, 1 - m),
        "other images": lambda s, m: (-s, m),
    }
    for name, change in changes.items():
        method, batches = tester.prepared("separate", jsrt, tmp_path)
        assert method.recipe.makes_masks
        if name == "same":

            def spy(images, masks, synthetic, new_masks, *args, update=method.segmentation_update,
                    **kwargs):  # fmt: skip
                seen.update(synthetic=synthetic, masks=new_masks)
                return update(images, masks, synthetic, new_masks, *args, **kwargs)

            method.segmentation_update = spy
        twins[name] = tester.segmenter_after_one_step(method, batches[0], change)
    same = [torch.equal(a, b) for a, b in zip(twins["same"], twins["again"], strict=True)]
    assert all(same)
    for name in ("other masks", "other images"):
        moved = [not torch.equal(a, b) for a, b in zip(twins["same"], twins[name], strict=True)]
        assert any(moved), name
    assert set(seen["masks"].unique().tolist()) <= {0.0, 1.0}
    assert seen["synthetic"].min() >= -1 and seen["synthetic"].max() <= 1
    assert not torch.equal(seen["masks"], batches[0]["new_mask"])


def test_a_separate_run_trains_on_wgan_pairs_and_generate_writes_them(data_dir, tmp_path):
    from genseg_cli.stages.generate import generate_pairs

    run = tmp_path / "run"
    cfg = compose("train", [*WGAN, "trainer.steps=2"])
    metrics = run_training(cfg, run)
    assert metrics["generator"]["name"] == "wgan" and metrics["run"]["method"] == "separate"
    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (run / "status.json").write_text(json.dumps({"status": "done"}))
    out = generate_pairs([f"run_dir={run}", "n=3", f"out={tmp_path / 'pairs'}", "device=cpu"])
    written = sorted((out / "masks").glob("*.png"))
    assert len(written) == 3 and len(list((out / "images").glob("*.png"))) == 3
    for path in written:
        assert set(np.unique(np.array(Image.open(path))).tolist()) <= {0, 255}
