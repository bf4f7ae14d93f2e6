"""Every option of every config group composes, and the composed config is what the code expects."""

import pytest
from hydra.utils import instantiate

from genseg_cli.core.config import compose, conf_dir

GROUPS = ["dataset", "backbone", "method", "augment", "optim", "profile", "trainer", "experiment"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((conf_dir() / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_option_composes(group, option):
    cfg = compose("train", [f"{group}={option}"])
    assert cfg.dataset.name and cfg.method.name and cfg.backbone.name


def test_defaults():
    cfg = compose("train")
    assert (cfg.dataset.name, cfg.backbone.name, cfg.method.name) == ("jsrt", "unet", "baseline")
    assert cfg.n_labeled == 9 and cfg.data.image_size == 128 and cfg.trainer.steps == 1500


def test_paper_profile_is_the_protocol():
    cfg = compose("train", ["profile=paper"])
    assert cfg.data.image_size == 256 and cfg.data.batch_size == 2 and cfg.trainer.steps == 5000
    assert cfg.optim.name == "rmsprop" and cfg.optim.optimizer.lr == 1e-4


def test_n_labeled_defaults_to_the_datasets_smallest_budget():
    assert compose("train", ["dataset=ph2"]).n_labeled == 40


@pytest.mark.parametrize("option", ["standard", "none"])
def test_augment_pipelines_instantiate(option):
    pipeline = compose("train", [f"augment={option}"]).augment.pipeline
    assert pipeline is None if option == "none" else instantiate(pipeline) is not None


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GENSEG_DATA_DIR", str(tmp_path))
    assert compose("train").paths.data_dir == str(tmp_path)
