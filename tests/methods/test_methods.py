"""Separate and GenSeg on real JSRT data: what changes, what must not, and what a run writes."""

import json
from pathlib import Path

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

FAST = [
    "profile=debug",
    "trainer.precision=fp32",
    "method.pretrain.steps=3",
    "method.pretrain.cache_dir=null",
    "generator.model.base_width=8",
    "generator.discriminator.base_width=8",
]


@pytest.fixture(scope="module")
def jsrt_data():
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real datasets not found")
    return load_run_data(dataset_spec("jsrt"), DATA_DIR, 9, 0, 0.2, with_ood=False)


def prepared(method_name: str, data, tmp_path: Path, *overrides: str):
    cfg = compose("train", [f"method={method_name}", *FAST, "mlo.arch_every=1", *overrides])
    method = build_method(cfg, resolve_runtime("cpu", "fp32", False))
    method.prepare(training_context(cfg, data, tmp_path))
    spec, mask_augment = DataSpec.from_config(cfg), cfg.get("mask_augment")
    batches = iter(training_batches(data.train, spec, 3, 0, cfg.augment, mask_augment, True))
    return method, batches


def generator_output(method, masks):
    method.generator.eval()
    with torch.no_grad():
        return method.generator(masks).clone()


def test_genseg_upper_step_moves_alpha_and_changes_the_generator(jsrt_data, tmp_path):
    method, batches = prepared("genseg", jsrt_data, tmp_path)
    masks = method.preview_masks
    alphas = [a.detach().clone() for a in method.generator.arch_parameters()]
    before = generator_output(method, masks)
    losses = method.train_step(next(batches))
    assert losses["hypergrad/alpha_norm"] > 0 and "loss/val_upper" in losses
    moved = [
        not torch.equal(a, b)
        for a, b in zip(alphas, method.generator.arch_parameters(), strict=False)
    ]
    assert all(moved)
    assert not torch.allclose(before, generator_output(method, masks))


def test_genseg_upper_step_alone_changes_alpha(jsrt_data, tmp_path):
    """Only the hypergradient touches alpha: the GAN step optimises G's weights, never alpha."""
    method, batches = prepared("genseg", jsrt_data, tmp_path, "mlo.arch_every=1000")
    alphas = [a.detach().clone() for a in method.generator.arch_parameters()]
    method.train_step(next(batches))
    assert all(
        torch.equal(a, b) for a, b in zip(alphas, method.generator.arch_parameters(), strict=False)
    )


JITTER = "method.synthetic_jitter={brightness:0.2,contrast:0.2,p:1.0}"


def test_jittered_synthetic_images_keep_the_hypergradient(jsrt_data, tmp_path):
    """With the photometric jitter on, the synthetic images the upper level sees are jittered
    and still in the autograd graph: the hypergradient is non-zero and alpha moves."""
    method, batches = prepared("genseg", jsrt_data, tmp_path, JITTER)
    assert method.jitter is not None and method.jitter.p == 1.0
    alphas = [a.detach().clone() for a in method.generator.arch_parameters()]
    losses = method.train_step(next(batches))
    assert losses["hypergrad/alpha_norm"] > 0
    assert not any(
        torch.equal(a, b) for a, b in zip(alphas, method.generator.arch_parameters(), strict=True)
    )
    torch.manual_seed(0)
    params = method.draw_jitter(4)
    assert not torch.equal(params[0], torch.ones(4))  # p=1: every image is changed


def test_separate_never_changes_the_generator_after_pretraining(jsrt_data, tmp_path):
    method, batches = prepared("separate", jsrt_data, tmp_path)
    state = {k: v.clone() for k, v in method.generator.state_dict().items()}
    for _ in range(2):
        losses = method.train_step(next(batches))
    assert set(losses) == {"loss/seg"}
    assert all(torch.equal(state[k], v) for k, v in method.generator.state_dict().items())


@pytest.mark.parametrize("method_name", ["separate", "genseg"])
def test_short_real_run_writes_every_output(method_name, data_dir, tmp_path):
    cfg = compose("train", [f"method={method_name}", *FAST, "mlo.arch_every=2"])
    metrics = run_training(cfg, tmp_path)
    for name in (
        "synthetic_start.png",
        "synthetic_pretrained.png",
        "synthetic_end.png",
        "metrics.json",
        "history.csv",
        "checkpoints/generator.pt",
    ):
        assert (tmp_path / name).is_file(), name
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    architecture = on_disk["generator"]["architecture"]
    assert architecture and all(abs(sum(e["weights"]) - 1) < 1e-5 for e in architecture)
    assert metrics["test"]["n"] == 62
    if method_name == "genseg":
        alpha = pd.read_csv(tmp_path / "alpha.csv")
        assert list(alpha.step) == [2, 4] and alpha.shape[1] > 3
        history = pd.read_csv(tmp_path / "history.csv")
        assert {"loss/D", "loss/G_gan", "loss/G_l1", "loss/seg", "loss/val_upper"} <= set(history)


def test_pretrained_generator_is_reused_from_the_cache(data_dir, tmp_path):
    overrides = [o for o in FAST if "cache_dir" not in o]
    cache = f"method.pretrain.cache_dir={tmp_path / 'cache'}"
    first = run_training(compose("train", ["method=separate", *overrides, cache]), tmp_path / "a")
    second = run_training(compose("train", ["method=separate", *overrides, cache]), tmp_path / "b")
    assert first["generator"]["pretrain_cached"] is False
    assert second["generator"]["pretrain_cached"] is True


LEARN_WEIGHT = "mlo.learn_synthetic_weight=true"


@pytest.mark.parametrize("generator", ["searchable", "pix2pix_fixed"])
def test_learned_synthetic_weight_follows_the_hypergradient(generator, jsrt_data, tmp_path):
    """With mlo.learn_synthetic_weight, an upper step moves lambda (also when the generator has
    no architecture to search), and the next segmenter update uses the moved value."""
    method, batches = prepared(
        "genseg", jsrt_data, tmp_path, LEARN_WEIGHT, f"generator={generator}"
    )
    assert method.current_synthetic_weight() == pytest.approx(1.0)
    losses = method.train_step(next(batches))
    assert losses["hypergrad/synthetic_weight"] != 0.0
    learned = losses["mlo/synthetic_weight"]
    assert learned != pytest.approx(1.0) and 0.0 < learned < 2.0
    assert ("hypergrad/alpha_norm" in losses) == (generator == "searchable")

    used = []
    update = method.segmentation_update
    method.segmentation_update = lambda *args: used.append(args[-1]) or update(*args)
    method.train_step(next(batches))
    assert used == [pytest.approx(learned)]


def test_learned_synthetic_weight_is_logged_and_reported(data_dir, tmp_path):
    cfg = compose("train", ["method=genseg", *FAST, "mlo.arch_every=2", LEARN_WEIGHT])
    metrics = run_training(cfg, tmp_path)
    history = pd.read_csv(tmp_path / "history.csv")
    logged = history["mlo/synthetic_weight"].dropna()
    assert len(logged) == cfg.trainer.steps // 2
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["synthetic_weight"]["initial"] == 1.0
    assert on_disk["synthetic_weight"]["final"] == pytest.approx(logged.iloc[-1])
    assert metrics["synthetic_weight"] == on_disk["synthetic_weight"]
