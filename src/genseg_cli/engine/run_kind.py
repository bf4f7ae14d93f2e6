"""What a run's model is, for the stages after training: genseg's own segmenter
(checkpoints/best.pt, resumed from checkpoints/last.pt), or a framework that trains and
predicts in its own loop (nnU-Net, whose fold lives under <run>/nnunet/). The stages ask here,
so none of them tests the method itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from omegaconf import DictConfig

from genseg_cli.core.runtime import Runtime
from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.checkpoint import LAST
from genseg_cli.engine.nnunet import finished as nnunet

BEST = "checkpoints/best.pt"


class OwnModel(Protocol):
    """A framework's trained model: logits of one sample at the image's own shape."""

    def logits(self, sample: Sample) -> torch.Tensor: ...

    def use_final_weights(self) -> int: ...

    def refusal(self, use: str) -> str: ...


def model_file(run_dir: Path, cfg: DictConfig) -> Path:
    """The file a finished run's kept model is read from (GensegError when an nnU-Net run's
    fold is gone; a missing best.pt is the caller's to say)."""
    if nnunet.is_nnunet(cfg):
        return nnunet.kept_checkpoint(run_dir, cfg)
    return run_dir / BEST


def own_model(run_dir: Path, cfg: DictConfig, spec: DataSpec, runtime: Runtime) -> OwnModel | None:
    """The framework's model of a finished run, or None for a run of genseg's own loop."""
    if nnunet.is_nnunet(cfg):
        return nnunet.NnUNetModel(run_dir, cfg, spec, runtime)
    return None


def resume_point(run_dir: Path, cfg: DictConfig) -> str:
    """Where `genseg train resume=` continues a stopped run from, with the command."""
    if nnunet.is_nnunet(cfg):
        return nnunet.resume_point(run_dir, cfg)
    where = "its last checkpoint" if (run_dir / LAST).is_file() else "step 1 (no checkpoint yet)"
    return f"continue from {where} with: genseg train resume={run_dir}"
