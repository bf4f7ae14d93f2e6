"""An nnU-Net run after `genseg train`: where its trained fold and checkpoints are, what a
stopped run resumes from, and its model for `genseg evaluate` and `genseg predict`.

Nothing here imports nnunetv2 until a model predicts, so a stopped run's status line and the
refusals of stages that cannot serve an nnU-Net run cost nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig

from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import Runtime
from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.nnunet.layout import Folders

if TYPE_CHECKING:  # nnunetv2 is imported only when a run needs it
    from genseg_cli.engine.nnunet.predict import Prediction

TARGET = "genseg_cli.engine.nnunet.method.NnUNet"
TRAINER, PLANS = "GensegTrainer", "nnUNetPlans"  # the fold folder's name: trainer__plans__config
PLANNED = "planned.json"
LATEST, FINAL, BEST = "checkpoint_latest.pth", "checkpoint_final.pth", "checkpoint_best.pth"
# what a finished nnU-Net run cannot do, and what to do instead
INSTEAD = {
    "generate": (
        "generate pairs from a run of method=separate or method=genseg on the same data (add "
        "format=nnunet), then train nnU-Net with them: method=nnunet method.extra_pairs=DIR"
    ),
    "export": "predict without export=; nnU-Net's own checkpoint is {fold}/{kept}",
    "ssl.teacher_run": "give a teacher run of another method (baseline, separate, genseg)",
}


def is_nnunet(cfg: DictConfig) -> bool:
    """Whether a run's config is a method=nnunet run."""
    method = cfg.get("method") or {}
    return str(method.get("_target_", "")) == TARGET


def fold_folder(run_dir: Path, cfg: DictConfig) -> Path | None:
    """nnU-Net's fold 0 folder of the run, once planned (None before: nothing trained yet)."""
    folders = Folders.of(run_dir, str(cfg.dataset.name))
    try:
        planned = json.loads((folders.root / PLANNED).read_text())
    except (OSError, ValueError):
        return None
    name = f"{TRAINER}__{PLANS}__{planned.get('configuration')}"
    return folders.results / folders.dataset / name / "fold_0"


def kept_name(cfg: DictConfig) -> str:
    """The checkpoint a finished run scored: final (nnU-Net's default) or its best EMA Dice."""
    return BEST if str(cfg.method.get("checkpoint", "final")) == "best" else FINAL


def kept_checkpoint(run_dir: Path, cfg: DictConfig) -> Path:
    """The checkpoint a finished run's scores came from; one line when it is gone."""
    fold = fold_folder(run_dir, cfg)
    path = fold / kept_name(cfg) if fold is not None else None
    if path is None or not path.is_file():
        where = path or Folders.of(run_dir, str(cfg.dataset.name)).root / PLANNED
        raise GensegError(
            f"run {run_dir} is an nnU-Net run but lacks {where}; was its nnunet/ folder moved "
            "or deleted? Train the run again"
        )
    return path


def saved_epoch(path: Path) -> int | None:
    """The epochs an nnU-Net checkpoint holds (None when it cannot be read). Memory-mapped:
    only the small entries are read, not the weights."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return int(state["current_epoch"])
    except Exception:  # a damaged file: the message names the file without an epoch
        return None


def resume_point(run_dir: Path, cfg: DictConfig) -> str:
    """What `genseg train resume=` continues a stopped nnU-Net run from, and the command."""
    command = f"genseg train resume={run_dir}"
    fold = fold_folder(run_dir, cfg)
    if fold is None:
        return f"nnU-Net had not planned the data yet: continue from the start with: {command}"
    if (fold / FINAL).is_file():
        return (
            f"nnU-Net had finished training ({FINAL}): continue with: {command} (it predicts "
            "and scores, without training again)"
        )
    latest = fold / LATEST
    if not latest.is_file():
        return (
            "nnU-Net saved no checkpoint yet (its planned data is kept): training starts again "
            f"at epoch 1 with: {command}"
        )
    epoch, epochs = saved_epoch(latest), int(cfg.method.epochs)
    held = (
        f"epoch {epoch} of {epochs} (step {epoch * int(cfg.method.iterations_per_epoch)})"
        if epoch is not None
        else "its last saved epoch"
    )
    return f"nnU-Net's {LATEST} holds {held}; continue from it with: {command}"


def refusal(run_dir: Path, cfg: DictConfig, use: str) -> str:
    """One line: `use` (a stage or an argument) cannot serve this nnU-Net run, and instead..."""
    fold = fold_folder(run_dir, cfg)
    instead = INSTEAD[use.split("=", 1)[0]].format(fold=fold, kept=kept_name(cfg))
    return (
        f"run {run_dir} is an nnU-Net run (method=nnunet), which has no genseg segmenter or "
        f"generator: {use} does not apply to it; {instead}"
    )


class NnUNetModel:
    """A finished run's nnU-Net fold behind nnUNetPredictor, loaded at its first prediction
    (the scores of train: each image at its own shape, with the run's tta and tiling)."""

    def __init__(self, run_dir: Path, cfg: DictConfig, spec: DataSpec, runtime: Runtime) -> None:
        self.run_dir, self.cfg, self.spec, self.runtime = run_dir, cfg, spec, runtime
        self.checkpoint = kept_checkpoint(run_dir, cfg)  # a missing one is said before any work
        self._prediction = None
        if runtime.device.type not in ("cpu", "cuda"):
            raise GensegError(
                f"device={runtime.device}: nnU-Net run {run_dir} predicts on cpu or cuda"
            )

    @property
    def prediction(self) -> Prediction:
        if self._prediction is None:
            from genseg_cli.engine.nnunet.predict import Prediction

            folders = Folders.of(self.run_dir, str(self.cfg.dataset.name))
            settings = dict(self.cfg.method)
            self._prediction = Prediction.of_checkpoint(
                self.checkpoint, folders, settings, self.spec, self.runtime
            )
        return self._prediction

    def logits(self, sample: Sample) -> torch.Tensor:
        """genseg logits (classes x the image's own shape) of one sample."""
        return self.prediction.logits(sample)

    def use_final_weights(self) -> int:
        """Predict with checkpoint_final.pth from now on; returns its step (the budget's last)."""
        steps = int(self.cfg.method.epochs) * int(self.cfg.method.iterations_per_epoch)
        final = self.checkpoint.with_name(FINAL)
        if final == self.checkpoint:
            return steps
        if not final.is_file():
            raise GensegError(f"run {self.run_dir} lacks {final}; weights=kept scores {BEST}")
        self.checkpoint, self._prediction = final, None
        return steps

    def refusal(self, use: str) -> str:
        return refusal(self.run_dir, self.cfg, use)
