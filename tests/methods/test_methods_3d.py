"""Every method on real hippocampus volumes (3D, three labels) through the same loop as 2D."""

import json

import pandas as pd
import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.data.batches import training_batches
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.run_data import load_run_data
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.loop import build_method, run_training, training_context

FAST_3D = [
    "dataset=hippocampus",
    "profile=debug",
    "trainer.precision=fp32",
    "generator.model.base_width=4",
    "generator.discriminator.base_width=4",
]
PRETRAIN = ["method.pretrain.steps=2", "method.pretrain.cache_dir=null"]


def overrides(method_name: str, *more: str) -> list[str]:
    synthetic = PRETRAIN if method_name != "baseline" else []
    return [f"method={method_name}", *FAST_3D, *synthetic, *more]


@pytest.fixture(scope="module")
def hippocampus_data():
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "hippocampus" / "imagesTr").is_dir():
        pytest.skip("real hippocampus volumes not found")
    return load_run_data(dataset_spec("hippocampus"), DATA_DIR, 10, 0, 0.2)


def prepared(method_name: str, data, tmp_path, *more: str):
    cfg = compose("train", overrides(method_name, "mlo.arch_every=1", *more))
    method = build_method(cfg, resolve_runtime("cpu", "fp32", False))
    method.prepare(training_context(cfg, data, tmp_path))
    spec, mask_augment = DataSpec.from_config(cfg), cfg.get("mask_augment")
    return method, iter(training_batches(data.train, spec, 3, 0, cfg.augment, mask_augment, True))


def test_3d_batches_carry_one_hot_volumes(hippocampus_data, tmp_path):
    _, batches = prepared("genseg", hippocampus_data, tmp_path)
    batch = next(batches)
    assert batch["image"].shape == (2, 1, 32, 48, 32)
    assert batch["mask"].shape == batch["new_mask"].shape == (2, 3, 32, 48, 32)


def test_genseg_hypergradient_moves_alpha_in_3d(hippocampus_data, tmp_path):
    method, batches = prepared("genseg", hippocampus_data, tmp_path)
    alphas = [a.detach().clone() for a in method.generator.arch_parameters()]
    losses = method.train_step(next(batches))
    assert 0 < losses["hypergrad/alpha_norm"] < 1e3  # finite and not exploding
    moved = method.generator.arch_parameters()
    assert all(not torch.equal(a, b) for a, b in zip(alphas, moved, strict=True))


def test_separate_keeps_the_3d_generator_frozen(hippocampus_data, tmp_path):
    method, batches = prepared("separate", hippocampus_data, tmp_path)
    state = {k: v.clone() for k, v in method.generator.state_dict().items()}
    method.train_step(next(batches))
    assert all(torch.equal(state[k], v) for k, v in method.generator.state_dict().items())


@pytest.mark.parametrize("method_name", ["baseline", "separate", "genseg"])
def test_short_3d_run_writes_per_class_scores(method_name, hippocampus_data, tmp_path):
    cfg = compose("train", overrides(method_name, "mlo.arch_every=2"))
    metrics = run_training(cfg, tmp_path)
    test = metrics["test"]
    assert test["n"] == 52 and metrics["ood"] == {}
    for key in ("dice_anterior_mean", "dice_posterior_mean", "iou_mean", "hd95_mean"):
        assert key in test
    assert test["dice_mean"] == pytest.approx(
        (test["dice_anterior_mean"] + test["dice_posterior_mean"]) / 2
    )
    per_image = pd.read_csv(tmp_path / "per_image.csv")
    assert {"dice_anterior", "hd95_posterior", "dice"} <= set(per_image.columns)
    assert json.loads((tmp_path / "metrics.json").read_text())["run"]["image_size"] == [32, 48, 32]
    if method_name != "baseline":
        for name in ("synthetic_start.png", "synthetic_end.png", "checkpoints/generator.pt"):
            assert (tmp_path / name).is_file(), name
    if method_name == "genseg":
        assert list(pd.read_csv(tmp_path / "alpha.csv").step) == [2, 4]
