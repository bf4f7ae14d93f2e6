"""Time training iterations of baseline, separate and genseg side by side.

Same process, data, batch size and resolution for every method; prints seconds per iteration and
the ratio to the baseline. GenSeg is timed over whole multiples of mlo.arch_every, so its number
includes the amortised upper-level (hypergradient) step; that step is also timed on its own.

    python scripts/benchmark_methods.py                       # jsrt, CPU profile
    python scripts/benchmark_methods.py --steps 40 dataset=ph2 mlo.hypergrad=finite_difference
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from genseg_cli.core.config import compose
from genseg_cli.core.runtime import resolve_runtime, seed_everything
from genseg_cli.data.batches import training_batches
from genseg_cli.data.run_data import load_run_data
from genseg_cli.data.spec import DataSpec
from genseg_cli.data.streams import NEW_MASKS
from genseg_cli.engine.loop import build_method, training_context

METHODS = ["baseline", "separate", "genseg"]


def time_steps(method, batches, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        method.train_step(next(batches))
    started = time.perf_counter()
    for _ in range(steps):
        method.train_step(next(batches))
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per method")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=ph2")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[1]
    os.environ.setdefault("GENSEG_DATA_DIR", str(repo.parent / "shared" / "datasets"))
    rows, data, cfg = [], None, None
    for name in METHODS:
        cfg = compose(
            "train",
            [f"method={name}", "method.pretrain.steps=0", *args.overrides]
            if name != "baseline"
            else ["method=baseline", *args.overrides],
        )
        seed_everything(0)
        if data is None:
            data = load_run_data(
                cfg.dataset,
                cfg.paths.data_dir,
                int(cfg.n_labeled),
                0,
                float(cfg.val_fraction),
                with_ood=False,
            )
        runtime = resolve_runtime(
            cfg.trainer.device, cfg.trainer.precision, cfg.trainer.channels_last
        )
        method = build_method(cfg, runtime)
        with tempfile.TemporaryDirectory() as tmp:
            method.prepare(training_context(cfg, data, Path(tmp)))
        spec, new_masks = DataSpec.from_config(cfg), NEW_MASKS in method.streams
        mask_augment = cfg.get("mask_augment")
        batches = itertools.cycle(
            training_batches(data.train, spec, 50, 0, cfg.augment, mask_augment, new_masks)
        )
        steps = args.steps
        if name == "genseg":
            every = int(cfg.mlo.arch_every)
            steps = max(every, steps // every * every)
        seconds = time_steps(method, batches, steps)
        rows.append((name, seconds))
        if name == "genseg":
            batch = next(batches)
            images, masks = method.to_device(batch)
            new_masks = batch["new_mask"].to(runtime.device)
            started = time.perf_counter()
            method.upper_update(images, masks, new_masks)
            rows.append(
                (f"  upper step alone ({cfg.mlo.hypergrad})", time.perf_counter() - started)
            )
    base = rows[0][1]
    table = Table(
        title=(
            f"{cfg.dataset.name}, {cfg.data.image_size} px, batch "
            f"{cfg.data.batch_size}, {runtime.precision} on {runtime.device}, "
            f"torch threads {torch.get_num_threads()}, arch_every "
            f"{cfg.mlo.arch_every}"
        )
    )
    for column in ("method", "s / iteration", "x baseline"):
        table.add_column(column)
    for name, seconds in rows:
        table.add_row(name, f"{seconds:.3f}", f"{seconds / base:.2f}")
    Console().print(table)
    print(
        "inference: every method predicts with the same segmenter; its cost equals the baseline's"
    )


if __name__ == "__main__":
    main()
