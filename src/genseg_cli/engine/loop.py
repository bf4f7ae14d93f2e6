"""The training loop shared by every method: sample, `method.train_step`, validate, checkpoint,
then score the best-validation model on the test split and every out-of-domain set."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genseg_cli.core.config import instantiate_explained
from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import load_torch, save_torch, write_csv, write_json
from genseg_cli.core.fingerprint import machine_fingerprint
from genseg_cli.core.progress import training_progress
from genseg_cli.core.runtime import Runtime, resolve_runtime, seed_everything
from genseg_cli.data.batches import preview_masks, training_batches, whole_set
from genseg_cli.data.run_data import RunData, load_run_data
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.checkpoint import (
    Progress,
    TrainingInterrupted,
    check_finite,
    load_last,
    save_last,
    set_rng_state,
)
from genseg_cli.engine.restore import load_run
from genseg_cli.engine.settings import check_settings
from genseg_cli.engine.step_batches import (
    check_teacher_run,
    check_unlabeled,
    generator_augment,
    pretraining_unlabeled,
    step_batches,
)
from genseg_cli.engine.tensorboard import ScalarLog
from genseg_cli.engine.tstr import train_on_synthetic_test_on_real
from genseg_cli.evaluation.evaluate import evaluate_model, summarise
from genseg_cli.evaluation.metrics import batch_dice
from genseg_cli.methods.base import Method, TrainingContext
from genseg_cli.methods.synthetic import SyntheticDataMethod
from genseg_cli.nets.segmenters import build_segmenter
from genseg_cli.semisup.base import UnlabeledObjective

log = logging.getLogger(__name__)
BEST = "checkpoints/best.pt"


def build_method(cfg: DictConfig, runtime: Runtime, spec: DataSpec | None = None) -> Method:
    """The configured method around a freshly built segmenter (spec: the run's DataSpec,
    resolved from cfg when not given)."""
    spec = spec or DataSpec.from_config(cfg)
    segmenter = runtime.prepare(build_segmenter(cfg.backbone, spec.dims))
    scheduler = instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None
    # objects are passed to the partial, not to instantiate(), which would turn them into configs
    return instantiate(cfg.method, _partial_=True)(
        segmenter=segmenter,
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=scheduler,
        runtime=runtime,
        spec=spec,
        grad_clip=cfg.trainer.grad_clip,
        unlabeled=build_unlabeled_objective(cfg, runtime),
    )


def build_unlabeled_objective(
    cfg: DictConfig, runtime: Runtime | None = None
) -> UnlabeledObjective | None:
    """The `ssl` group's objective on unlabeled images, or None (ssl=none); a teacher run
    (`ssl.teacher_run`) is loaded here, its best segmenter on the run's device."""
    node = cfg.get("ssl")
    if not node or not node.get("_target_"):
        return None
    settings = OmegaConf.to_container(node, resolve=True)  # the run's values, then no parent
    for key in ("name", "label"):
        settings.pop(key)
    extra = {}
    if settings.pop("teacher_run", None):
        device = str(runtime.device) if runtime is not None else "auto"
        extra["teacher"] = load_run(node.teacher_run, device).network("ssl.teacher_run")
    # the objective's own check of its settings, as one line (exit 2)
    return instantiate_explained(
        OmegaConf.create(settings),
        label=f"ssl={node.name}",
        user_errors=(ValueError, GensegError),
        name=node.name,
        **extra,
    )


def training_context(
    cfg: DictConfig, data: RunData, run_dir: Path, spec: DataSpec | None = None
) -> TrainingContext:
    seed, spec = int(cfg.seed), spec or DataSpec.from_config(cfg)
    key = {
        "dataset": cfg.dataset.name,
        "train": data.splits.train,
        "size": spec.model_size,
        "seed": seed,
        "channels": int(cfg.dataset.channels),
    }
    return TrainingContext(
        run_dir=run_dir,
        train_batch=whole_set(data.train, spec),
        val_batch=whole_set(data.val, spec),
        preview_masks=preview_masks(data.train, spec, cfg.get("mask_augment"), seed + 2),
        real_batches=lambda n: training_batches(
            data.train, spec, n, seed + 3, generator_augment(cfg), cfg.get("mask_augment")
        ),
        cache_key=hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16],
        progress=bool(cfg.trainer.progress),
        unlabeled_batches=pretraining_unlabeled(cfg, data, spec),
        unlabeled_key=hashlib.sha256(json.dumps(data.splits.unlabeled).encode()).hexdigest()[:16],
    )


@torch.no_grad()
def validate(method: Method, val_batch: dict[str, torch.Tensor]) -> float:
    """Mean Dice on the validation pairs at model resolution (fast, for model selection)."""
    images, masks = method.to_device(val_batch)
    method.segmenter.eval()
    with method.runtime.autocast():
        logits = method.segmenter(images)
    return float(batch_dice(logits, masks).mean())


def checkpoint(method: Method, cfg: DictConfig, step: int, val_dice: float) -> dict:
    """What rebuilds and identifies a trained segmenter: weights, the run's config, step, score."""
    return {
        "model": method.segmenter.state_dict(),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "step": step,
        "val_dice": val_dice,
    }


def fit(cfg: DictConfig, method: Method, data: RunData, run_dir: Path) -> dict:
    """Run trainer.steps training steps, keeping the best-validation checkpoint (or, with
    trainer.keep=final, the last step's) on disk and a resumable one every
    trainer.checkpoint_every steps; with `resume`, continue from it."""
    spec = method.spec
    context = training_context(cfg, data, run_dir, spec)
    started = time.perf_counter()
    method.prepare(context)
    prepare_time = time.perf_counter() - started
    steps, tcfg = int(cfg.trainer.steps), cfg.trainer
    batches = step_batches(cfg, method, data, steps)
    progress_state = Progress()
    restored = load_last(run_dir, method) if cfg.get("resume") else None
    if restored is not None:
        progress_state, rng = restored
        for _ in range(progress_state.step):  # replay the sampler and augmentation streams
            next(batches)
        set_rng_state(rng)
        log.info("resumed from step %d", progress_state.step)
    elif cfg.get("resume"):
        log.info("no checkpoint to resume from; training starts at step 1")
    best, history = progress_state.best, progress_state.history
    keep_best_val = tcfg.get("keep", "best_val") == "best_val"
    scalars = ScalarLog(run_dir, tcfg.get("tensorboard", "auto"))
    started = time.perf_counter()
    with training_progress(tcfg.progress) as bar:
        task = bar.add_task(
            "train", total=steps, completed=progress_state.step, loss="-", val="-", speed="-"
        )
        for step in range(progress_state.step + 1, steps + 1):
            losses = method.train_step(next(batches))
            check_finite(losses, step, run_dir)
            row = {"step": step, **losses}
            if step % tcfg.val_every == 0 or step == steps:
                row["val/dice"] = score = validate(method, context.val_batch)
                method.on_validation(score)
                # ties go to the later, longer-trained model; trainer.keep=final keeps the last
                if (score >= best["val_dice"]) if keep_best_val else step == steps:
                    best = {"step": step, "val_dice": score}
                    save_torch(run_dir / BEST, checkpoint(method, cfg, step, score))
                bar.update(task, val=f"{score:.4f}")
            history.append(row)
            scalars.add(row, step)
            speed = (step - progress_state.step) / (time.perf_counter() - started)
            bar.update(task, advance=1, loss=f"{row['loss/seg']:.4f}", speed=f"{speed:.1f}")
            if step % tcfg.log_every == 0 or step == steps:
                log.info(
                    "step %d/%d %s",
                    step,
                    steps,
                    " ".join(
                        f"{k}={v:.4f}" for k, v in row.items() if "/" in k and "alpha/" not in k
                    ),
                )
            if tcfg.checkpoint_every and step % tcfg.checkpoint_every == 0:
                elapsed = progress_state.train_time_s + time.perf_counter() - started
                save_last(run_dir, method, Progress(step, best, history, elapsed))
            if tcfg.get("stop_after") and step == tcfg.stop_after and step < steps:
                raise TrainingInterrupted(
                    f"stopped after step {step} (trainer.stop_after); "
                    f"continue with: genseg train resume={run_dir}"
                )
    scalars.close()
    # the whole training time: the parts before a resumption are in last.pt
    train_time = progress_state.train_time_s + time.perf_counter() - started
    write_history(run_dir, pd.DataFrame(history))
    return {
        **best,
        "train_time_s": train_time,
        "prepare_time_s": prepare_time,
        "method": method.finish(run_dir),
    }


def write_history(run_dir: Path, history: pd.DataFrame) -> None:
    """history.csv (every logged value per step) and alpha.csv (architecture weights over time)."""
    write_csv(run_dir / "history.csv", history)
    alpha_columns = [c for c in history.columns if c.startswith("alpha/")]
    if alpha_columns:
        alphas = history[["step", *alpha_columns]].dropna(subset=alpha_columns, how="all")
        write_csv(run_dir / "alpha.csv", alphas)


def score_final_weights(
    cfg: DictConfig, method: Method, data: RunData, kept_step: int
) -> dict | None:
    """With evaluation.final_weights, the segmenter's weights after the last step scored on
    the test and OOD sets ({"step", "test", <each OOD set>}); None when off, or when the kept
    checkpoint is the last step's (its scores are the same). With a few validation images the
    best-validation choice is noisy, so a benchmark reports both."""
    steps = int(cfg.trainer.steps)
    if not cfg.evaluation.get("final_weights", False) or kept_step == steps:
        return None
    summary, _ = score_sets(cfg, method, data)
    return {"step": steps, **summary}


def score_sets(cfg: DictConfig, method: Method, data: RunData) -> tuple[dict, pd.DataFrame]:
    """The segmenter as it is, scored on the test and OOD sets: (summaries, per-image scores)."""
    spec, sets = method.spec, {"test": data.test, **data.ood}
    frames, summary = [], {}
    for name, samples in sets.items():
        scores = evaluate_model(
            method.segmenter,
            samples,
            spec,
            method.runtime,
            cfg.evaluation.resolution,
            cfg.evaluation.threshold,
            cfg.evaluation.batch_size,
        )
        summary[name] = summarise(scores)
        frames.append(scores.assign(set=name))
    return summary, pd.concat(frames)


def evaluate_run(cfg: DictConfig, method: Method, data: RunData, run_dir: Path) -> dict:
    """Score the kept checkpoint (best.pt) on test and OOD sets; write per_image.csv; return
    summaries."""
    method.segmenter.load_state_dict(load_torch(run_dir / BEST)["model"])
    summary, per_image = score_sets(cfg, method, data)
    write_csv(run_dir / "per_image.csv", per_image[["set", *per_image.columns.drop("set")]])
    return summary


@dataclass
class PreparedRun:
    """A run that passed its pre-flight: settings checked, data verified, split and loaded,
    method built. Nothing has been written yet."""

    cfg: DictConfig
    spec: DataSpec
    runtime: Runtime
    data: RunData
    method: Method


def prepare_run(cfg: DictConfig) -> PreparedRun:
    """The pre-flight of a run: every check that can fail on the user's input, before any file
    is written (a failure here leaves nothing to clean up)."""
    check_settings(cfg)
    seed_everything(int(cfg.seed))
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    spec = DataSpec.from_config(cfg)
    channels_last = bool(cfg.trainer.channels_last) and spec.supports_channels_last
    runtime = resolve_runtime(cfg.trainer.device, cfg.trainer.precision, channels_last)
    data = load_run_data(
        cfg.dataset,
        cfg.paths.data_dir,
        int(cfg.n_labeled),
        int(cfg.seed),
        float(cfg.val_fraction),
        with_ood=bool(cfg.evaluation.ood),
        n_unlabeled=cfg.get("n_unlabeled"),
    )
    method = build_method(cfg, runtime, spec)
    check_unlabeled(cfg, method, data)
    check_teacher_run(cfg, data)
    if isinstance(method, SyntheticDataMethod):
        generator_augment(cfg)  # a misspelt generator.skip_augment, refused before training
    if hasattr(method, "preflight"):  # a method's own checks (nnU-Net: installed, extra pairs)
        method.preflight(cfg, data)
    return PreparedRun(cfg, spec, runtime, data, method)


def run_training(cfg: DictConfig, run_dir: Path) -> dict:
    """Train one configured run into `run_dir` and return what metrics.json holds."""
    return train_prepared(prepare_run(cfg), run_dir)


def train_prepared(run: PreparedRun, run_dir: Path) -> dict:
    """Train a run that passed its pre-flight, score it and write its results."""
    cfg, spec, runtime, data, method = run.cfg, run.spec, run.runtime, run.data, run.method
    write_json(run_dir / "splits.json", data.splits.to_dict())
    log.info(
        "%s: %d train, %d val, %d test; OOD %s; %s %s on %s",
        cfg.dataset.name,
        len(data.train),
        len(data.val),
        len(data.test),
        list(data.ood) or "none",
        cfg.backbone.name,
        runtime.precision,
        runtime.device,
    )
    if hasattr(method, "train_and_predict"):  # a framework with its own loop (nnU-Net)
        best, per_image = method.train_and_predict(cfg, data, run_dir)
        write_csv(run_dir / "per_image.csv", per_image[["set", *per_image.columns.drop("set")]])
        results = {name: summarise(rows) for name, rows in per_image.groupby("set", sort=False)}
        final, precision = None, method.precision
    else:
        best = fit(cfg, method, data, run_dir)
        # the last step's weights, scored before evaluate_run loads the kept checkpoint
        final = score_final_weights(cfg, method, data, best["step"])
        results, precision = evaluate_run(cfg, method, data, run_dir), runtime.precision
    metrics = {
        "run": {
            "dataset": cfg.dataset.name,
            "method": cfg.method.name + (cfg.get("ssl") or {}).get("label", ""),
            "backbone": cfg.backbone.name,
            "n_labeled": int(cfg.n_labeled),
            "seed": int(cfg.seed),
            "steps": int(best.get("steps", cfg.trainer.steps)),
            "image_size": spec.model_size,
            "device": str(runtime.device),
            "precision": precision,
            "resolution": cfg.evaluation.resolution,
            "n_train": len(data.train),
            "n_val": len(data.val),
            "n_unlabeled": len(data.splits.unlabeled) if method.unlabeled is not None else 0,
            # what the segmenter started from: a local state dict, an ImageNet encoder, or random
            "start_weights": cfg.backbone.get("weights") or cfg.backbone.get("encoder_weights"),
        },
        "best_step": best["step"],
        "val_dice": best["val_dice"],
        "train_time_s": best["train_time_s"],
        "prepare_time_s": best["prepare_time_s"],
        **best["method"],
        "test": results.pop("test"),
        "ood": results,
        "ood_absent": data.ood_absent,  # listed out-of-domain sets not in the data dir
        "machine": machine_fingerprint(precision, runtime.device),
    }
    if cfg.evaluation.get("final_weights", False):
        final = final or {"step": best["step"], "test": metrics["test"], **metrics["ood"]}
        metrics["final"] = {"step": final.pop("step"), "test": final.pop("test"), "ood": final}
    tstr_steps = int(cfg.evaluation.tstr_steps)
    if tstr_steps > 0 and isinstance(method, SyntheticDataMethod):
        metrics["tstr"] = train_on_synthetic_test_on_real(cfg, method, data, tstr_steps)
    write_json(run_dir / "metrics.json", metrics)
    return metrics
