"""How useful a trained generator is, as one number: train on synthetic, test on real (TSTR).

After a separate/genseg run, a fresh segmenter (the run's backbone, optimiser recipe and batch
size) is trained for `evaluation.tstr_steps` steps on synthetic pairs only: new masks made from
the labelled train masks by the run's `mask_augment` group, images made from them by the run's
final generator, frozen as `separate` freezes it. Its Dice on the real test set says how much of
what the segmenter needs the synthetic pairs carry on their own: a generator that draws smooth
blobs scores near zero however good the run's own segmenter is. Runs after the run's own scoring,
from its own seed, so it never changes the run's results.
"""

from __future__ import annotations

import logging
import time

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from genseg_cli.data.batches import training_batches
from genseg_cli.data.run_data import RunData
from genseg_cli.evaluation.evaluate import evaluate_model, summarise
from genseg_cli.methods.synthetic import SyntheticDataMethod
from genseg_cli.nets.segmenters import build_segmenter

log = logging.getLogger(__name__)
TSTR_SEED_OFFSET = 7  # its own streams: never the ones the run trained on


def train_on_synthetic_test_on_real(
    cfg: DictConfig, method: SyntheticDataMethod, data: RunData, steps: int
) -> dict:
    """{"steps", "time_s", "test": Dice/IoU summary} of a fresh segmenter trained `steps` steps
    on the method's synthetic pairs and scored on the real test set."""
    started = time.perf_counter()
    spec, runtime = method.spec, method.runtime
    seed = int(cfg.seed) + TSTR_SEED_OFFSET
    torch.manual_seed(seed)
    segmenter = runtime.prepare(build_segmenter(cfg.backbone, spec.dims))
    optimizer = instantiate(cfg.optim.optimizer)(segmenter.parameters())
    scheduler = (
        instantiate(cfg.optim.scheduler, T_max=steps)(optimizer)
        if cfg.optim.get("scheduler") and "T_max" in cfg.optim.scheduler
        else None
    )
    method.recipe.freeze()
    masks_only = training_batches(
        data.train, spec, steps, seed, None, cfg.get("mask_augment"), with_new_masks=True
    )
    segmenter.train()
    for batch in masks_only:
        new_masks = batch["new_mask"].to(runtime.device)
        with torch.no_grad():
            images = method.synthesise(new_masks)
        optimizer.zero_grad(set_to_none=True)
        with runtime.autocast():
            logits = segmenter(images)
        loss = method.loss(logits.float(), new_masks)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    scores = evaluate_model(
        segmenter,
        data.test,
        spec,
        runtime,
        cfg.evaluation.resolution,
        cfg.evaluation.threshold,
        cfg.evaluation.batch_size,
    )
    summary = summarise(scores)
    log.info(
        "train on synthetic, test on real (%d steps): test Dice %.4f",
        steps,
        summary["dice_mean"],
    )
    return {"steps": steps, "time_s": time.perf_counter() - started, "test": summary}
