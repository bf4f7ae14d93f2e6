"""nnU-Net's own trainer with genseg's budget, checkpoints that survive a kill, and a report per
step. Imported only while a run's nnU-Net environment is set (it imports nnunetv2)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from genseg_cli.core.runtime import Runtime
from genseg_cli.engine.nnunet.finished import LATEST

log = logging.getLogger("genseg.nnunet")


class StopAfterEpoch(Exception):
    """The budget's stop point (trainer.stop_after) was reached, its checkpoint saved."""


class GensegTrainer(nnUNetTrainer):
    """nnUNetTrainer unchanged in what it learns; `configure` sets the budget. On CPU its steps
    run under the run's autocast (bf16 where genseg uses it), so a run's recorded precision is
    what it computed in; on CUDA nnU-Net keeps its own fp16 mixed precision."""

    genseg_runtime: Runtime | None = None
    stop_epoch: int | None = None
    on_step: Callable[[float], None] | None = None
    on_epoch: Callable[[GensegTrainer], None] | None = None

    def configure(
        self,
        settings: dict,
        runtime: Runtime,
        stop_epoch: int | None,
        on_step: Callable[[float], None] | None = None,
        on_epoch: Callable[[GensegTrainer], None] | None = None,
    ) -> None:
        self.num_epochs = int(settings["epochs"])
        self.num_iterations_per_epoch = int(settings["iterations_per_epoch"])
        self.num_val_iterations_per_epoch = int(settings["val_iterations_per_epoch"])
        self.save_every = int(settings["save_every"])
        self.genseg_runtime, self.stop_epoch = runtime, stop_epoch
        self.on_step, self.on_epoch = on_step, on_epoch

    def print_to_log_file(
        self, *args: object, also_print_to_console: bool = True, add_timestamp: bool = True
    ) -> None:
        # nnU-Net's own log file keeps every line; the terminal gets genseg's lines per epoch
        super().print_to_log_file(*args, also_print_to_console=False, add_timestamp=add_timestamp)

    def _autocast(self) -> contextlib.AbstractContextManager:
        on_cpu = self.device.type == "cpu" and self.genseg_runtime is not None
        return self.genseg_runtime.autocast() if on_cpu else contextlib.nullcontext()

    def train_step(self, batch: dict) -> dict:
        with self._autocast():
            out = super().train_step(batch)
        if self.on_step is not None:
            self.on_step(float(out["loss"]))
        return out

    def validation_step(self, batch: dict) -> dict:
        with self._autocast():
            return super().validation_step(batch)

    def save_checkpoint(self, filename: str) -> None:
        # written whole, then renamed: a kill while saving leaves the previous checkpoint intact
        partial = f"{filename}.partial"
        super().save_checkpoint(partial)
        if os.path.isfile(partial):
            os.replace(partial, filename)

    def on_epoch_end(self) -> None:
        finished = self.current_epoch + 1
        stopping = self.stop_epoch is not None and finished == self.stop_epoch
        stopping = stopping and finished < self.num_epochs
        if stopping and finished % self.save_every:  # nnU-Net saves on its own otherwise
            self.save_checkpoint(os.path.join(self.output_folder, LATEST))
        super().on_epoch_end()
        if self.on_epoch is not None:
            self.on_epoch(self)
        if stopping:
            raise StopAfterEpoch(finished)

    def epoch_row(self, epoch: int) -> dict:
        """What one epoch logged, for history.csv."""
        values = self.logger.get_checkpoint()

        def at(key: str) -> float:
            series = values.get(key) or []
            return float(series[epoch]) if epoch < len(series) else float("nan")

        return {
            "epoch": epoch + 1,
            "step": (epoch + 1) * self.num_iterations_per_epoch,
            "loss/seg": at("train_losses"),
            "val/loss": at("val_losses"),
            "val/pseudo_dice": at("mean_fg_dice"),
            "val/ema_pseudo_dice": at("ema_fg_dice"),
            "lr": at("lrs"),
        }

    def train_seconds(self) -> float:
        """Seconds spent in the epochs trained so far, over every resumption."""
        values = self.logger.get_checkpoint()
        starts, ends = values["epoch_start_timestamps"], values["epoch_end_timestamps"]
        return float(sum(e - s for s, e in zip(starts, ends, strict=False)))

    def best_epoch(self) -> int:
        """The epoch (0-based) of the best EMA pseudo Dice, which checkpoint_best.pth holds."""
        ema = self.logger.get_checkpoint()["ema_fg_dice"]
        return max(range(len(ema)), key=lambda i: (ema[i], i)) if ema else self.num_epochs - 1

    def shut_down(self) -> None:
        """Stop the augmentation workers (when method.augment_workers > 0)."""
        for loader in (self.dataloader_train, self.dataloader_val):
            finish = getattr(loader, "_finish", None)
            if finish is not None:
                with contextlib.suppress(Exception):
                    finish()


def build_trainer(
    preprocessed_dataset: Path, configuration: str, device: torch.device
) -> GensegTrainer:
    """The trainer of fold 0 from the run's plans (nnU-Net's own get_trainer_from_args, less its
    search for a trainer class by name)."""
    plans = json.loads((preprocessed_dataset / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False
    dataset_json = json.loads((preprocessed_dataset / "dataset.json").read_text())
    with contextlib.redirect_stdout(_NullWriter()):
        return GensegTrainer(
            plans=plans,
            configuration=configuration,
            fold=0,
            dataset_json=dataset_json,
            device=device,
        )


class _NullWriter:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
