"""One nnU-Net run: write the run's split as an nnU-Net dataset, plan and preprocess it, train
fold 0 (or continue it), then predict and score the test and out-of-domain sets.

The stages go through nnunetv2's Python entry points (plan_and_preprocess_api, nnUNetTrainer,
nnUNetPredictor) with the run's folders in nnU-Net's environment variables. `resume=` continues:
a planned dataset (nnunet/planned.json) is kept, training continues from nnU-Net's
checkpoint_latest.pth, and a trained fold (checkpoint_final.pth) is never trained again.
nnU-Net's own errors end the run as failed with nnU-Net's message; Ctrl-C and SIGTERM pass
through untouched, so the run ends as interrupted.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from omegaconf import DictConfig

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import write_csv, write_json
from genseg_cli.core.progress import training_progress
from genseg_cli.data.run_data import RunData
from genseg_cli.engine.checkpoint import TrainingInterrupted
from genseg_cli.engine.nnunet.finished import FINAL, LATEST, PLANNED
from genseg_cli.engine.nnunet.layout import (
    Folders,
    check_raw_dataset,
    file_ending,
    nnunet_environment,
    write_raw_dataset,
    write_split,
)
from genseg_cli.engine.nnunet.method import NnUNet
from genseg_cli.engine.nnunet.plans import plan_and_preprocess

if TYPE_CHECKING:  # nnunetv2 is imported only when a run needs it
    from genseg_cli.engine.nnunet.trainer import GensegTrainer

log = logging.getLogger("genseg.nnunet")


def run_nnunet(
    cfg: DictConfig, method: NnUNet, data: RunData, run_dir: Path
) -> tuple[dict, pd.DataFrame]:
    """(what the loop's fit() returns, per-image scores of the test and OOD sets)."""
    folders = Folders.of(run_dir, str(cfg.dataset.name))
    if not cfg.get("resume") and folders.root.exists():
        shutil.rmtree(folders.root)  # a new run never reuses an earlier attempt's files
    folders.make()
    threads = torch.get_num_threads()
    settings = method.settings
    with nnunet_environment(folders, int(settings["augment_workers"]), threads):
        try:
            return _run(cfg, method, data, run_dir, folders)
        except GensegError:
            raise
        except Exception as err:  # nnU-Net's own failure: its message, not a traceback
            raise GensegError(f"nnU-Net failed: {type(err).__name__}: {err}") from err
        finally:
            torch.set_num_threads(threads)  # nnU-Net's stages set their own


def _run(
    cfg: DictConfig, method: NnUNet, data: RunData, run_dir: Path, folders: Folders
) -> tuple[dict, pd.DataFrame]:
    planned = plan_once(cfg, method, data, folders)
    trainer = train_fold(cfg, method, folders, planned, run_dir)
    from genseg_cli.engine.nnunet.predict import Prediction

    steps_done = trainer.current_epoch * trainer.num_iterations_per_epoch
    kept_epoch = trainer.best_epoch() if method.settings["checkpoint"] == "best" else None
    prediction = Prediction.of_trainer(trainer, method, kept_epoch is not None)
    val = prediction.score(data.val, cfg, "validation")
    frames = [prediction.score(data.test, cfg, "test").assign(set="test")]
    for name, samples in data.ood.items():
        frames.append(prediction.score(samples, cfg, name).assign(set=name))
    per_image = pd.concat(frames)
    write_csv(run_dir / "history.csv", history(trainer))
    kept_step = (
        steps_done
        if kept_epoch is None
        else (kept_epoch + 1) * method.settings["iterations_per_epoch"]
    )
    return {
        "step": int(kept_step),
        "steps": method.steps,
        "val_dice": float(val["dice"].mean()),
        "train_time_s": trainer.train_seconds(),
        "prepare_time_s": float(planned["prepare_time_s"]),
        "method": {"nnunet": summary(method, planned)},
    }, per_image


def plan_once(cfg: DictConfig, method: NnUNet, data: RunData, folders: Folders) -> dict:
    """The raw dataset, nnU-Net's fingerprint, plans and preprocessed data, and the split file:
    made once (nnunet/planned.json says so), kept by resume=."""
    marker = folders.root / PLANNED
    if marker.is_file():
        import json

        return json.loads(marker.read_text())
    started = time.perf_counter()
    if folders.preprocessed_dataset.exists():
        shutil.rmtree(folders.preprocessed_dataset)
    spec = method.spec
    log.info("nnU-Net: writing %d train + %d validation cases", len(data.train), len(data.val))
    fold = write_raw_dataset(
        folders, data.train, data.val, spec, method.channel_names, method.extra_pairs
    )
    check_raw_dataset(folders, fold, file_ending(spec))
    log.info("nnU-Net: fingerprint, plans and preprocessing (%s)", method.configuration)
    plan = plan_and_preprocess(folders, method.configuration, method.settings)
    write_split(folders, fold)
    planned = {
        "configuration": method.configuration,
        "plan": plan,
        "n_train": len(fold["train"]),
        "n_val": len(fold["val"]),
        "n_extra": len(fold["train"]) - len(data.train),
        "prepare_time_s": time.perf_counter() - started,
    }
    write_json(marker, planned)
    return planned


def train_fold(
    cfg: DictConfig, method: NnUNet, folders: Folders, planned: dict, run_dir: Path
) -> GensegTrainer:
    """nnU-Net's trainer after training fold 0: trained now, continued from
    checkpoint_latest.pth, or loaded from checkpoint_final.pth when training had finished."""
    from genseg_cli.engine.nnunet.trainer import StopAfterEpoch, build_trainer

    settings = method.settings
    iterations = int(settings["iterations_per_epoch"])
    stop_after = cfg.trainer.get("stop_after")
    stop_epoch = math.ceil(int(stop_after) / iterations) if stop_after else None
    trainer = build_trainer(
        folders.preprocessed_dataset, method.configuration, method.runtime.device
    )
    output = Path(trainer.output_folder)
    if (output / FINAL).is_file():
        log.info("nnU-Net: fold 0 is trained (%s); not training again", output / FINAL)
        trainer.configure(settings, method.runtime, None)
        trainer.load_checkpoint(str(output / FINAL))
        return trainer
    if cfg.get("resume") and (output / LATEST).is_file():
        trainer.configure(settings, method.runtime, stop_epoch)
        trainer.load_checkpoint(str(output / LATEST))
        log.info("nnU-Net: resumed after epoch %d of %d", trainer.current_epoch, trainer.num_epochs)
    steps = method.steps
    with training_progress(bool(cfg.trainer.progress)) as bar:
        task = bar.add_task("nnU-Net", total=steps, loss="-", val="-", speed="-")

        def on_step(loss: float) -> None:
            bar.update(task, advance=1, loss=f"{loss:.4f}")

        def on_epoch(done: GensegTrainer) -> None:
            row = done.epoch_row(done.current_epoch - 1)
            bar.update(task, completed=row["step"], val=f"{row['val/pseudo_dice']:.4f}")
            log.info(
                "epoch %d/%d step %d/%d loss/seg=%.4f val/pseudo_dice=%.4f",
                row["epoch"],
                done.num_epochs,
                row["step"],
                steps,
                row["loss/seg"],
                row["val/pseudo_dice"],
            )

        trainer.configure(settings, method.runtime, stop_epoch, on_step, on_epoch)
        bar.update(task, completed=trainer.current_epoch * iterations)
        try:
            trainer.run_training()
        except StopAfterEpoch as stop:
            raise TrainingInterrupted(
                f"stopped after epoch {stop.args[0]} (step {stop.args[0] * iterations}, "
                f"trainer.stop_after); continue with: genseg train resume={run_dir}"
            ) from None
        finally:
            trainer.shut_down()
    return trainer


def history(trainer: GensegTrainer) -> pd.DataFrame:
    """history.csv: one row per epoch trained (over every resumption)."""
    epochs = len(trainer.logger.get_checkpoint()["train_losses"])
    return pd.DataFrame([trainer.epoch_row(e) for e in range(epochs)])


def summary(method: NnUNet, planned: dict) -> dict:
    """What metrics.json records of nnU-Net: its version, configuration, plan and budget."""
    settings = method.settings
    return {
        "version": version("nnunetv2"),
        "configuration": planned["configuration"],
        "plan": planned["plan"],
        "epochs": int(settings["epochs"]),
        "iterations_per_epoch": int(settings["iterations_per_epoch"]),
        "checkpoint": settings["checkpoint"],
        "tta": bool(settings["tta"]),
        "n_extra_pairs": int(planned["n_extra"]),
    }
