"""Where the time of a training iteration goes, per method and precision: a profiler table.

Runs real training steps of each method (the pipeline's own batches, from its data loader) under
torch.profiler and sums the time inside the labels the methods put around their parts
(`genseg_cli.methods.base`: segmenter update, unlabeled pseudo labels, generator forward, GAN
step, upper step), plus drawing the batch, one validation pass and the final scoring of the test
set. Per-iteration columns are means over the timed steps (the upper step is amortised over
mlo.arch_every); "other" is what the labels do not cover (optimiser bookkeeping, Python).

    python scripts/profile_methods.py                                  # jsrt, bf16 where it pays
    python scripts/profile_methods.py --precisions bf16 fp32 --steps 30
    python scripts/profile_methods.py --methods baseline genseg+fixmatch dataset=busi
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from method_setup import overrides_of, prepared_method, run_data, runtime_of
from rich.console import Console
from rich.table import Table
from torch.profiler import ProfilerActivity, profile, record_function

from genseg_cli.core.config import compose
from genseg_cli.core.runtime import resolve_runtime, seed_everything
from genseg_cli.engine.loop import validate
from genseg_cli.engine.step_batches import step_batches
from genseg_cli.evaluation.evaluate import evaluate_model
from genseg_cli.methods.base import (
    GAN_STEP,
    GENERATOR_FORWARD,
    SAMPLE_WEIGHTS,
    SEGMENTER_UPDATE,
    UNLABELED_PREPARE,
    UPPER_STEP,
)

DATA = "draw batch"
PARTS = [
    DATA,
    GENERATOR_FORWARD,
    GAN_STEP,
    SAMPLE_WEIGHTS,
    SEGMENTER_UPDATE,
    UNLABELED_PREPARE,
    UPPER_STEP,
]


def profile_method(name: str, precision: str, steps: int, overrides: list[str]) -> dict:
    """Milliseconds per iteration in each part, the iteration's total, and validation/scoring."""
    cfg = compose("train", [*overrides_of(name), f"trainer.precision={precision}", *overrides])
    seed_everything(0)
    data = run_data(cfg)
    runtime = runtime_of(cfg, precision)
    method, context = prepared_method(cfg, data, runtime)
    if name.startswith("genseg"):  # whole cycles of the upper level
        every = int(cfg.mlo.arch_every)
        steps = max(every, steps // every * every)
    warmup = 5
    batches = step_batches(cfg, method, data, steps + warmup)
    for _ in range(warmup):
        method.train_step(next(batches))
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            with record_function(DATA):
                batch = next(batches)
            method.train_step(batch)
    total = (time.perf_counter() - started) / steps * 1e3
    spent = {e.key: e.cpu_time_total / 1e3 / steps for e in prof.key_averages() if e.key in PARTS}
    started = time.perf_counter()
    validate(method, context.val_batch)
    validation = (time.perf_counter() - started) * 1e3
    started = time.perf_counter()
    evaluate_model(
        method.segmenter,
        data.test,
        method.spec,
        runtime,
        cfg.evaluation.resolution,
        cfg.evaluation.threshold,
        cfg.evaluation.batch_size,
    )
    scoring = time.perf_counter() - started
    # the unlabeled objective's pseudo labels run inside the segmenter update: report them apart
    if UNLABELED_PREPARE in spent:
        spent[SEGMENTER_UPDATE] = spent.get(SEGMENTER_UPDATE, 0.0) - spent[UNLABELED_PREPARE]
    return {
        **spent,
        "total": total,
        "other": total - sum(spent.values()),
        "validation": validation,
        "scoring": scoring,
        "n_test": len(data.test),
        "title": f"{cfg.dataset.name}, {cfg.data.image_size} px, batch {cfg.data.batch_size}, "
        f"arch_every {cfg.mlo.arch_every}, val_every {cfg.trainer.val_every}, "
        f"torch threads {torch.get_num_threads()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="profiled steps per method")
    parser.add_argument(
        "--methods", nargs="+", default=["baseline", "separate", "genseg", "baseline+fixmatch"]
    )
    parser.add_argument("--precisions", nargs="+", default=["auto"], help="auto, bf16, fp32")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=ph2")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[1]
    os.environ.setdefault("GENSEG_DATA_DIR", str(repo.parent / "shared" / "datasets"))
    rows, title = [], ""
    for precision in args.precisions:
        resolved = resolve_runtime("cpu" if not torch.cuda.is_available() else "auto", precision)
        for name in args.methods:
            result = profile_method(name, resolved.precision, args.steps, args.overrides)
            rows.append((name, resolved.precision, result))
            title = result["title"]
    table = Table(title=f"ms per training iteration: {title}")
    columns = ["method", "precision", *PARTS, "other", "total", "validation", "test scoring"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("method", "precision") else "right")
    for name, precision, result in rows:
        parts = [f"{result[p]:.0f}" if p in result else "-" for p in PARTS]
        table.add_row(
            name,
            precision,
            *parts,
            f"{result['other']:.0f}",
            f"{result['total']:.0f}",
            f"{result['validation']:.0f} ms",
            f"{result['scoring']:.1f} s ({result['n_test']} images)",
        )
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
