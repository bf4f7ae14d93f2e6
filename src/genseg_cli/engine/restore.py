"""Reopening a finished run: its config, splits, best segmenter and (if any) generator; for a
framework with its own network (nnU-Net), that framework's model (`genseg_cli.engine.run_kind`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import load_torch
from genseg_cli.core.runtime import Runtime, resolve_runtime
from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.run_kind import OwnModel, model_file, own_model
from genseg_cli.evaluation.evaluate import predict_logits, score_pairs, to_size
from genseg_cli.generators.base import GeneratorRecipe, build_recipe
from genseg_cli.nets.segmenters import build_segmenter


@dataclass
class TrainedRun:
    """A finished run: its composed config, splits, best-validation segmenter (eval mode) and
    the data spec its networks were built for. A framework's run (nnU-Net) has no segmenter but
    its own model, which predicts each image at its own shape."""

    run_dir: Path
    cfg: DictConfig
    splits: dict[str, list[str]]
    segmenter: nn.Module | None
    runtime: Runtime
    spec: DataSpec
    own: OwnModel | None = None

    def network(self, use: str) -> nn.Module:
        """The genseg segmenter, for what only it serves (`use`: e.g. export); a framework's run
        is refused in one line saying what to do instead."""
        if self.own is not None:
            raise GensegError(self.own.refusal(use))
        assert self.segmenter is not None
        return self.segmenter

    def logits(self, samples: Sequence[Sample], batch_size: int) -> list[torch.Tensor]:
        """Logits (classes x spatial, fp32, CPU) of each sample: at the model size from a
        segmenter, at the image's own shape from a framework's model."""
        if self.own is not None:
            return [self.own.logits(sample) for sample in samples]
        return predict_logits(self.network("predict"), samples, self.spec, self.runtime, batch_size)

    def score(
        self, samples: Sequence[Sample], resolution: str, threshold: float, batch_size: int
    ) -> pd.DataFrame:
        """Per-sample scores, compared at `resolution` as training's evaluation compares them."""
        logits = self.logits(samples, batch_size)
        if resolution == "model":  # a framework's logits come at each image's own shape
            size = tuple(self.spec.spatial)
            logits = [x if tuple(x.shape[1:]) == size else to_size(x, size) for x in logits]
        return score_pairs(logits, samples, self.spec, resolution, threshold)


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
    for name in ("config.yaml", "splits.json"):
        if not (run_dir / name).is_file():
            raise GensegError(f"run {run_dir} lacks {name}; was it written by genseg train?")
    cfg = OmegaConf.load(run_dir / "config.yaml")
    model = model_file(run_dir, cfg)
    if not model.is_file():
        raise GensegError(
            f"run {run_dir} lacks {model.relative_to(run_dir)}; was it written by genseg train?"
        )
    splits = json.loads((run_dir / "splits.json").read_text())
    return run_dir, cfg, splits


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
    own = own_model(run_dir, cfg, spec, runtime)
    if own is not None:
        return TrainedRun(run_dir, cfg, splits, None, runtime, spec, own)
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
    if run.own is not None:
        raise GensegError(run.own.refusal("generate"))
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
