"""Every option of every config group composes, and the composed config is what the code expects."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genseg_cli.core.config import compose, conf_dir
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.data.augment import instantiate_pipeline
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.loop import build_method
from genseg_cli.nets.mixed_conv import MixedConv
from genseg_cli.nets.segmenters import build_segmenter

GROUPS = sorted(
    p.name
    for p in conf_dir().iterdir()
    if p.is_dir() and p.name not in ("hydra", "experiment", "benchmark")
)
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((conf_dir() / g).glob("*.yaml"))]
EXPERIMENTS = [p.stem for p in sorted((conf_dir() / "experiment").glob("*.yaml"))]
CPU = resolve_runtime("cpu", "fp32", False)


def build(group: str, cfg):
    """The object an option of `group` configures, built the way a run builds it."""
    spec = DataSpec.from_config(cfg)
    if group == "dataset":
        return spec
    if group == "backbone":
        return build_segmenter(cfg.backbone, spec.dims)
    if group in ("method", "generator", "mlo"):
        return build_method(cfg, CPU, spec)
    if group == "ssl":
        return build_method(cfg, CPU, spec).unlabeled or "none"
    if group in ("augment", "mask_augment"):
        return instantiate_pipeline(cfg[group], 0, spec) or "none"
    if group == "optim":
        optimizer = instantiate(cfg.optim.optimizer)([torch.nn.Parameter(torch.zeros(1))])
        return instantiate(cfg.optim.scheduler)(optimizer) if cfg.optim.get("scheduler") else 1
    return cfg.get(group, cfg)  # profile, trainer, evaluation, paths: plain values


# options with a key that only a finished run can fill (tests/semisup/test_self_training.py)
NEEDS_A_RUN = {("ssl", "self_training"): "ssl.teacher_run"}


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_option_of_every_group_composes_and_builds(group, option):
    extra = ["profile=debug"] if group != "profile" else []
    if group == "dataset" and option == "folder":
        extra.append("dataset.root=/nonexistent")  # a user folder: composes without data
    cfg = compose("train", [f"{group}={option}", *extra])
    assert cfg.dataset.name and cfg.method.name and cfg.backbone.name
    if (group, option) in NEEDS_A_RUN:  # built in its own tests, from a finished run
        assert OmegaConf.missing_keys(cfg) == {NEEDS_A_RUN[group, option]}
        return
    assert build(group, cfg) is not None


@pytest.mark.parametrize("option", EXPERIMENTS)
def test_every_experiment_composes(option):
    cfg = compose("train", [f"experiment={option}"])
    assert DataSpec.from_config(cfg).dims in (2, 3)


def test_defaults():
    cfg = compose("train")
    assert (cfg.dataset.name, cfg.backbone.name, cfg.method.name) == ("jsrt", "unet", "baseline")
    assert cfg.n_labeled == 9 and cfg.data.image_size == 128 and cfg.trainer.steps == 1500


def test_genseg_builds_the_adopted_hotter_mixture_by_default():
    """genseg's default is softmax(alpha / 0.2) with arch_lr 1e-2 (docs/decisions.md): the
    composed default must build it, in every mixed op and in the upper level's optimizer."""
    method = build_method(compose("train", ["method=genseg", "profile=debug"]), CPU)
    mixed = [m for m in method.generator.modules() if isinstance(m, MixedConv)]
    assert mixed and {m.temperature for m in mixed} == {0.2}
    assert [g["lr"] for g in method.arch_optimizer.param_groups] == [1e-2]


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
