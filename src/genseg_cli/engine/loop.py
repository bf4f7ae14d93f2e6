"""The training loop shared by every method: sample, `method.train_step`, validate, checkpoint,
then score the best-validation model on the test split and every out-of-domain set."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, RandomSampler

from genseg_cli.data.dataset import Pair
from genseg_cli.data.registry import class_names
from genseg_cli.data.run_data import RunData, load_run_data
from genseg_cli.data.samples import make_dataset, model_size
from genseg_cli.data.volumes import Volume
from genseg_cli.engine.checkpoint import (
    Progress,
    TrainingInterrupted,
    check_finite,
    load_last,
    save_last,
    set_rng_state,
)
from genseg_cli.engine.device import Runtime, resolve_runtime, seed_everything
from genseg_cli.engine.files import save_torch, write_csv, write_json
from genseg_cli.engine.progress import training_progress
from genseg_cli.engine.tensorboard import ScalarLog
from genseg_cli.evaluation.evaluate import evaluate_model, summarise
from genseg_cli.evaluation.metrics import batch_dice
from genseg_cli.methods.base import Method, TrainingContext
from genseg_cli.nets.segmenters import build_segmenter

log = logging.getLogger(__name__)
BEST = "checkpoints/best.pt"


def build_method(cfg: DictConfig, runtime: Runtime) -> Method:
    """The configured method around a freshly built segmenter."""
    segmenter = runtime.prepare(build_segmenter(cfg.backbone, int(cfg.dataset.dims)))
    scheduler = instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None
    # objects are passed to the partial, not to instantiate(), which would turn them into configs
    return instantiate(cfg.method, _partial_=True)(
        segmenter=segmenter,
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=scheduler,
        runtime=runtime,
        grad_clip=cfg.trainer.grad_clip,
    )


def instantiate_pipeline(node: DictConfig | None, seed: int, dims: int = 2):
    """An augmentation pipeline from config, seeded (it keeps its own generator), or None:
    `node.pipeline` (albumentations) in 2D, `node.volume_pipeline` (MONAI) in 3D."""
    key = "volume_pipeline" if dims == 3 else "pipeline"
    if not node or not node.get(key):
        return None
    pipeline = instantiate(node[key], _convert_="all")  # albumentations wants plain lists
    if hasattr(pipeline, "set_random_seed"):
        pipeline.set_random_seed(seed)
    else:
        pipeline.set_random_state(seed=seed)
    return pipeline


def training_batches(
    pairs: list[Pair] | list[Volume],
    cfg: DictConfig,
    steps: int,
    seed: int,
    with_new_masks: bool = False,
    augment: bool = True,
) -> DataLoader:
    """`steps` batches sampled with replacement from the train pairs, augmented unless
    `augment` is False; with `with_new_masks`, each item also carries a new mask made by the
    mask_augment pipeline."""
    dims = int(cfg.dataset.dims)
    dataset = make_dataset(
        pairs,
        cfg,
        instantiate_pipeline(cfg.augment, seed, dims) if augment else None,
        mask_pipeline=instantiate_pipeline(cfg.get("mask_augment"), seed + 1, dims),
        with_new_masks=with_new_masks,
    )
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(
        dataset, replacement=True, num_samples=steps * cfg.data.batch_size, generator=generator
    )
    return DataLoader(
        dataset,
        batch_size=cfg.data.batch_size,
        sampler=sampler,
        num_workers=cfg.data.num_workers,
        drop_last=True,
    )


def whole_set(pairs: list[Pair] | list[Volume], cfg: DictConfig) -> dict[str, torch.Tensor]:
    """All pairs at model resolution as one batch (validation, references for previews)."""
    items = make_dataset(pairs, cfg)
    return {k: torch.stack([items[i][k] for i in range(len(items))]) for k in ("image", "mask")}


def preview_masks(pairs: list[Pair] | list[Volume], cfg: DictConfig, n: int = 4) -> torch.Tensor:
    """Fixed new masks, made from the first `n` train masks, for before/after pictures."""
    pipeline = instantiate_pipeline(cfg.get("mask_augment"), int(cfg.seed) + 2, cfg.dataset.dims)
    items = make_dataset(pairs[:n], cfg, mask_pipeline=pipeline, with_new_masks=True)
    return torch.stack([items[i]["new_mask"] for i in range(len(items))])


def training_context(cfg: DictConfig, data: RunData, run_dir: Path) -> TrainingContext:
    seed, size = int(cfg.seed), model_size(cfg)
    key = {
        "dataset": cfg.dataset.name,
        "train": data.splits.train,
        "size": size,
        "seed": seed,
        "channels": int(cfg.dataset.channels),
    }
    return TrainingContext(
        run_dir=run_dir,
        train_batch=whole_set(data.train, cfg),
        val_batch=whole_set(data.val, cfg),
        preview_masks=preview_masks(data.train, cfg),
        real_batches=lambda n: training_batches(data.train, cfg, n, seed + 3),
        cache_key=hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16],
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
    """Run trainer.steps training steps, keeping the best-validation checkpoint on disk and a
    resumable one every trainer.checkpoint_every steps; with `resume`, continue from it."""
    context = training_context(cfg, data, run_dir)
    started = time.perf_counter()
    method.prepare(context)
    prepare_time = time.perf_counter() - started
    steps, tcfg = int(cfg.trainer.steps), cfg.trainer
    batches = iter(
        training_batches(
            data.train, cfg, steps, int(cfg.seed), method.needs_new_masks, method.augment_real
        )
    )
    progress_state = Progress()
    restored = load_last(run_dir, method) if cfg.get("resume") else None
    if restored is not None:
        progress_state, rng = restored
        for _ in range(progress_state.step):  # replay the sampler and augmentation streams
            next(batches)
        set_rng_state(rng)
        log.info("resumed from step %d", progress_state.step)
    best, history = progress_state.best, progress_state.history
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
                if score >= best["val_dice"]:  # ties go to the later, longer-trained model
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
                save_last(run_dir, method, Progress(step, best, history))
            if tcfg.get("stop_after") and step == tcfg.stop_after and step < steps:
                raise TrainingInterrupted(
                    f"stopped after step {step} (trainer.stop_after); "
                    f"continue with: genseg train resume={run_dir}"
                )
    scalars.close()
    train_time = time.perf_counter() - started
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


def evaluate_run(cfg: DictConfig, method: Method, data: RunData, run_dir: Path) -> dict:
    """Score the best checkpoint on test and OOD sets; write per_image.csv; return summaries."""
    method.segmenter.load_state_dict(torch.load(run_dir / BEST, map_location="cpu")["model"])
    sets = {"test": data.test, **data.ood}
    frames, summary = [], {}
    for name, pairs in sets.items():
        scores = evaluate_model(
            method.segmenter,
            pairs,
            model_size(cfg),
            method.runtime,
            cfg.evaluation.resolution,
            cfg.evaluation.threshold,
            cfg.evaluation.batch_size,
            class_names(cfg.dataset),
        )
        summary[name] = summarise(scores)
        frames.append(scores.assign(set=name))
    per_image = pd.concat(frames)
    write_csv(run_dir / "per_image.csv", per_image[["set", *per_image.columns.drop("set")]])
    return summary


def run_training(cfg: DictConfig, run_dir: Path) -> dict:
    """Train one configured run into `run_dir` and return what metrics.json holds."""
    seed_everything(int(cfg.seed))
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    # channels_last is a 2D (NCHW) layout; 3D networks keep the default one
    channels_last = bool(cfg.trainer.channels_last) and int(cfg.dataset.dims) == 2
    runtime = resolve_runtime(cfg.trainer.device, cfg.trainer.precision, channels_last)
    data = load_run_data(
        cfg.dataset,
        cfg.paths.data_dir,
        int(cfg.n_labeled),
        int(cfg.seed),
        float(cfg.val_fraction),
        with_ood=bool(cfg.evaluation.ood),
    )
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
    method = build_method(cfg, runtime)
    best = fit(cfg, method, data, run_dir)
    results = evaluate_run(cfg, method, data, run_dir)
    metrics = {
        "run": {
            "dataset": cfg.dataset.name,
            "method": cfg.method.name,
            "backbone": cfg.backbone.name,
            "n_labeled": int(cfg.n_labeled),
            "seed": int(cfg.seed),
            "steps": int(cfg.trainer.steps),
            "image_size": model_size(cfg),
            "device": str(runtime.device),
            "precision": runtime.precision,
            "resolution": cfg.evaluation.resolution,
            "n_train": len(data.train),
            "n_val": len(data.val),
        },
        "best_step": best["step"],
        "val_dice": best["val_dice"],
        "train_time_s": best["train_time_s"],
        "prepare_time_s": best["prepare_time_s"],
        **best["method"],
        "test": results.pop("test"),
        "ood": results,
    }
    write_json(run_dir / "metrics.json", metrics)
    return metrics
