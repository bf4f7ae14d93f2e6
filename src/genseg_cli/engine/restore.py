"""Reopening a finished run: its config, splits, best segmenter and (if any) generator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import nn

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import load_torch
from genseg_cli.core.runtime import Runtime, resolve_runtime
from genseg_cli.data.spec import DataSpec
from genseg_cli.generators.base import GeneratorRecipe, build_recipe
from genseg_cli.nets.segmenters import build_segmenter


@dataclass
class TrainedRun:
    """A finished run: its composed config, splits, best-validation segmenter (eval mode) and
    the data spec its networks were built for."""

    run_dir: Path
    cfg: DictConfig
    splits: dict[str, list[str]]
    segmenter: nn.Module
    runtime: Runtime
    spec: DataSpec


def run_status(run_dir: Path) -> str:
    path = run_dir / "status.json"
    if not path.is_file():
        return "unknown (no status.json)"
    try:
        return json.loads(path.read_text()).get("status", "unknown")
    except json.JSONDecodeError:
        return "unknown (unreadable status.json)"


def read_run(run_dir: str | Path) -> tuple[Path, DictConfig, dict[str, list[str]]]:
    """(the folder, its config, its splits) of a finished run; refuses unfinished or failed
    runs and folders that genseg train did not write."""
    run_dir = Path(run_dir).expanduser().resolve()
    if not run_dir.is_dir():
        raise GensegError(f"run directory {run_dir} does not exist")
    status = run_status(run_dir)
    if status != "done":
        raise GensegError(
            f"run {run_dir} is not finished (status: {status}); "
            "only runs with status done can be used"
        )
    for name in ("config.yaml", "splits.json", "checkpoints/best.pt"):
        if not (run_dir / name).is_file():
            raise GensegError(f"run {run_dir} lacks {name}; was it written by genseg train?")
    splits = json.loads((run_dir / "splits.json").read_text())
    return run_dir, OmegaConf.load(run_dir / "config.yaml"), splits


def load_run(run_dir: str | Path, device: str = "auto") -> TrainedRun:
    """Open a run directory written by `genseg train` (`read_run`) with its kept segmenter.

    >>> run = load_run("outputs/runs/jsrt/baseline/n9_s0_20261125-114115")
    >>> run.cfg.dataset.name
    'jsrt'
    """
    run_dir, cfg, splits = read_run(run_dir)
    spec = DataSpec.from_config(cfg)
    runtime = resolve_runtime(
        device, cfg.trainer.precision, cfg.trainer.channels_last and spec.supports_channels_last
    )
    segmenter = build_segmenter(without_starting_weights(cfg.backbone), spec.dims)
    state = load_torch(run_dir / "checkpoints" / "best.pt")
    segmenter.load_state_dict(state["model"])
    segmenter = runtime.prepare(segmenter).eval()
    return TrainedRun(run_dir, cfg, splits, segmenter, runtime, spec)


def without_starting_weights(backbone: DictConfig) -> DictConfig:
    """The backbone config with no weights to start from (a local file, or an ImageNet encoder
    that smp/timm would download again): best.pt holds every weight a finished run needs."""
    backbone = OmegaConf.merge(backbone, {"weights": None})
    for node in (backbone, backbone.get("model"), backbone.get("volume_model")):
        if node is not None and "encoder_weights" in node:
            node.encoder_weights = None
    return backbone


def load_generator(run: TrainedRun) -> nn.Module:
    """The run's final generator (eval mode); only separate and genseg runs have one."""
    return load_recipe(run).generator


def load_recipe(run: TrainedRun) -> GeneratorRecipe:
    """The run's generator recipe with its final networks, the generator in eval mode."""
    path = run.run_dir / "checkpoints" / "generator.pt"
    if not path.is_file():
        raise GensegError(
            f"run {run.run_dir} has no generator (method={run.cfg.method.name}); "
            "use a run of method=separate or method=genseg"
        )
    state = load_torch(path)
    # lr 0: nothing is trained here; the recipe's optimisers only exist because it owns them
    recipe = build_recipe(OmegaConf.create(state["config"]), run.spec, run.runtime, lr=0.0)
    recipe.load_networks(state)
    recipe.generator.eval()
    return recipe
