"""How useful a trained generator is, as one number: train on synthetic, test on real (TSTR).

After a separate/genseg run, a fresh segmenter (the run's backbone, optimiser recipe and batch
size) is trained for `evaluation.tstr_steps` steps on synthetic pairs only: new masks made from
the labelled train masks by the run's `mask_augment` group, images made from them by the run's
final generator (or the generator's own pairs, when it makes its masks), frozen as `separate`
freezes it. Its Dice on the real test set says how much of what the segmenter needs the
synthetic pairs carry on their own: a generator that draws smooth blobs scores near zero
however good the run's own segmenter is. Runs after the run's own scoring, from its own seed, so
it never changes the run's results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor

from genseg_cli.data.batches import training_batches
from genseg_cli.data.run_data import RunData
from genseg_cli.evaluation.evaluate import evaluate_model, summarise
from genseg_cli.methods.base import Method
from genseg_cli.methods.synthetic import SyntheticDataMethod
from genseg_cli.nets.segmenters import build_segmenter

log = logging.getLogger(__name__)
TSTR_SEED_OFFSET = 7  # its own streams: never the ones the run trained on


def train_on_synthetic_test_on_real(
    cfg: DictConfig, method: SyntheticDataMethod, data: RunData, steps: int
) -> dict:
    """{"steps", "time_s", "test": Dice/IoU summary} of a fresh segmenter trained `steps` steps
    on the method's synthetic pairs and scored on the real test set."""
    spec, runtime = method.spec, method.runtime
    method.recipe.freeze()
    masks_only = training_batches(
        data.train, spec, steps, tstr_seed(cfg), None, cfg.get("mask_augment"), with_new_masks=True
    )

    def synthetic_pairs() -> Iterator[tuple[Tensor, Tensor]]:
        for batch in masks_only:
            new_masks = batch["new_mask"].to(runtime.device)
            with torch.no_grad():  # closed before the yield: the consumer needs gradients
                images, masks = method.synthetic_pairs(new_masks)
            yield images, masks

    result = train_fresh_and_score(cfg, method, data, steps, synthetic_pairs())
    log.info(
        "train on synthetic, test on real (%d steps): test Dice %.4f",
        steps,
        result["test"]["dice_mean"],
    )
    return result


def tstr_seed(cfg: DictConfig) -> int:
    """The diagnostic's seed: its own streams, never the ones the run trained on."""
    return int(cfg.seed) + TSTR_SEED_OFFSET


def train_fresh_and_score(
    cfg: DictConfig,
    method: Method,
    data: RunData,
    steps: int,
    pairs: Iterable[tuple[Tensor, Tensor]],
) -> dict:
    """{"steps", "time_s", "test"} of a fresh segmenter (the run's backbone, optimiser and loss,
    seeded by `tstr_seed`) trained on (images, masks) `pairs` and scored on the real test set.
    `pairs` is iterated lazily, after the segmenter is built, so its draws come after the
    segmenter's initial weights; `scripts/generator_sweep.py` passes real pairs for reference."""
    started = time.perf_counter()
    spec, runtime = method.spec, method.runtime
    torch.manual_seed(tstr_seed(cfg))
    segmenter = runtime.prepare(build_segmenter(cfg.backbone, spec.dims))
    optimizer = instantiate(cfg.optim.optimizer)(segmenter.parameters())
    scheduler = (
        instantiate(cfg.optim.scheduler, T_max=steps)(optimizer)
        if cfg.optim.get("scheduler") and "T_max" in cfg.optim.scheduler
        else None
    )
    segmenter.train()
    for images, masks in pairs:
        optimizer.zero_grad(set_to_none=True)
        with runtime.autocast():
            logits = segmenter(images)
        method.loss(logits.float(), masks).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    ev = cfg.evaluation
    scores = evaluate_model(
        segmenter, data.test, spec, runtime, ev.resolution, ev.threshold, ev.batch_size
    )
    return {"steps": steps, "time_s": time.perf_counter() - started, "test": summarise(scores)}
