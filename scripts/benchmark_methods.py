"""Time training iterations of every method and semi-supervised combination side by side.

Same process, data, batch size and resolution for every method; prints seconds per iteration and
the ratio to the baseline. GenSeg is timed over whole multiples of mlo.arch_every, so its number
includes the amortised upper-level (hypergradient) step; that step is also timed on its own.
Combinations with an objective on unlabeled images (`baseline+fixmatch`, ...) read the pool's
unlabeled images as a run would.

    python scripts/benchmark_methods.py                       # jsrt, CPU profile, all methods
    python scripts/benchmark_methods.py --methods baseline genseg+fixmatch dataset=busi
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
from genseg_cli.data.run_data import load_run_data
from genseg_cli.engine.loop import build_method, training_context
from genseg_cli.engine.streams import step_batches

METHODS = [
    "baseline",
    "separate",
    "genseg",
    "baseline+mean_teacher",
    "baseline+fixmatch",
    "baseline+cross_teaching",
    "genseg+fixmatch",
]


def overrides_of(name: str) -> list[str]:
    """`genseg+fixmatch` -> method=genseg ssl=fixmatch, without pre-training."""
    method, _, objective = name.partition("+")
    out = [f"method={method}", f"ssl={objective or 'none'}"]
    return out if method == "baseline" else [*out, "method.pretrain.steps=0"]


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
    parser.add_argument("--methods", nargs="+", default=METHODS, help="the first is the reference")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=ph2")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[1]
    os.environ.setdefault("GENSEG_DATA_DIR", str(repo.parent / "shared" / "datasets"))
    rows, data, cfg = [], None, None
    for name in args.methods:
        cfg = compose("train", [*overrides_of(name), *args.overrides])
        seed_everything(0)
        if data is None:
            data = load_run_data(
                cfg.dataset,
                cfg.paths.data_dir,
                int(cfg.n_labeled),
                0,
                float(cfg.val_fraction),
                with_ood=False,
                n_unlabeled=cfg.get("n_unlabeled"),
            )
        runtime = resolve_runtime(
            cfg.trainer.device, cfg.trainer.precision, cfg.trainer.channels_last
        )
        method = build_method(cfg, runtime)
        with tempfile.TemporaryDirectory() as tmp:
            method.prepare(training_context(cfg, data, Path(tmp)))
        batches = itertools.cycle(list(step_batches(cfg, method, data, 50)))
        steps = args.steps
        if name.startswith("genseg"):
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
