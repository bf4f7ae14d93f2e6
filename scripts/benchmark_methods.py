"""Time training iterations of every method and semi-supervised combination side by side.

Same process, data, batch size and resolution for every method; prints seconds per iteration and
the ratio to the baseline. GenSeg is timed over whole multiples of mlo.arch_every, so its number
includes the amortised upper-level (hypergradient) step; that step is also timed on its own.
Combinations with an objective on unlabeled images (`baseline+fixmatch`, ...) read the pool's
unlabeled images as a run would. Batches are built before the timer starts, so the numbers are
the cost of the updates, not of reading and augmenting images.

    python scripts/benchmark_methods.py                       # jsrt, CPU profile, all methods
    python scripts/benchmark_methods.py --methods baseline genseg+fixmatch dataset=busi
    python scripts/benchmark_methods.py --steps 40 dataset=ph2 mlo.hypergrad=finite_difference
    python scripts/benchmark_methods.py --methods genseg genseg:mlo.sample_weights=difference

More flags (a plain run without them behaves as above):

--warmup N: untimed steps before the timed ones (default 3). Time per iteration rises over the
  first ~100 steps of training, so only numbers taken after the same warm-up compare.
    python scripts/benchmark_methods.py --warmup 100 --steps 50 --methods baseline genseg
--reference: also time scripts/reference_baseline.py's plain loop (smp UNet, BCE + Dice, AdamW)
  on the same train pairs, image size, batch, precision, memory format, warm-up and step count,
  and print the ratio pipeline baseline / plain loop (genseg's own overhead).
    python scripts/benchmark_methods.py --methods baseline separate --reference
--sizes PX [PX ...]: one table per image size (data.image_size=PX).
    python scripts/benchmark_methods.py --sizes 128 256 --methods baseline genseg
--labelled N [N ...]: repeat every method for each n_labeled (train + validation images).
    python scripts/benchmark_methods.py --labelled 9 40 --methods baseline separate genseg
--unlabeled N [N ...]: repeat the combinations with unlabeled images (names with '+') for each
  n_unlabeled; `all` is every pool image. A combination left with no unlabeled image is skipped.
    python scripts/benchmark_methods.py --unlabeled 0 100 all --methods baseline baseline+fixmatch
--csv FILE: also append every row (size, method, n_labeled, n_unlabeled, seconds) to FILE, for
  scripts that collect the numbers (scripts/gpu_check.sh).
    python scripts/benchmark_methods.py --methods baseline genseg --csv outputs/benchmark.csv
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from method_setup import overrides_of, prepare, run_data, runtime_of
from rich.console import Console
from rich.table import Table

from genseg_cli.core.config import compose
from genseg_cli.core.runtime import seed_everything
from genseg_cli.data.registry import dataset_root
from genseg_cli.data.streams import UNLABELED
from genseg_cli.engine.loop import build_method
from genseg_cli.engine.step_batches import step_batches

METHODS = [
    "baseline",
    "separate",
    "genseg",
    "baseline+mean_teacher",
    "baseline+fixmatch",
    "baseline+cross_teaching",
    "genseg+fixmatch",
]
REFERENCE = Path(__file__).with_name("reference_baseline.py")
PLAIN = "plain loop (reference_baseline.py)"
N_BATCHES = 50  # distinct batches built per method and cycled through while timing


@dataclass
class Row:
    name: str
    seconds: float | None  # None: not timed, for the reason in `skipped`
    n_labeled: int
    n_unlabeled: str  # "–" where the method reads no unlabeled images
    skipped: str = ""


def synchronize() -> None:
    # CUDA runs asynchronously: without this the timer can stop before queued kernels finish
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_steps(method, batches, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        method.train_step(next(batches))
    synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        method.train_step(next(batches))
    synchronize()
    return (time.perf_counter() - started) / steps


def load_reference():
    """scripts/reference_baseline.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("reference_baseline", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unlabeled_count(text: str) -> str:
    """argparse type of --unlabeled: a count >= 0 or `all`."""
    if text == "all" or (text.isdigit() and int(text) >= 0):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is neither a count >= 0 nor 'all'")


class Bench:
    """Composes, loads and times one configuration at a time; run data is loaded once per
    (n_labeled, n_unlabeled), since neither the method nor the image size changes it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data: dict[tuple, object] = {}
        self.reference = load_reference() if args.reference else None
        self.cfg = self.runtime = None  # of the last configuration, for the table's title

    def compose(self, name: str, extra: list[str]):
        cfg = compose("train", [*overrides_of(name), *self.args.overrides, *extra])
        self.cfg, self.runtime = cfg, runtime_of(cfg)
        return cfg

    def run_data(self, cfg):
        key = (int(cfg.n_labeled), cfg.get("n_unlabeled"))
        if key not in self.data:
            self.data[key] = run_data(cfg)
        return self.data[key]

    def time_method(self, name: str, extra: list[str]) -> list[Row]:
        cfg = self.compose(name, extra)
        seed_everything(0)
        data = self.run_data(cfg)
        method = build_method(cfg, self.runtime)
        n_labeled = int(cfg.n_labeled)
        reads_unlabeled = UNLABELED in method.streams
        n_unlabeled = str(len(data.splits.unlabeled)) if reads_unlabeled else "–"
        if reads_unlabeled and not data.splits.unlabeled:
            # a run would refuse this configuration (nothing to learn from), so no time to show
            return [Row(name, None, n_labeled, n_unlabeled, "no unlabeled images")]
        prepare(method, cfg, data)
        batches = itertools.cycle(list(step_batches(cfg, method, data, N_BATCHES)))
        steps = self.args.steps
        if name.startswith("genseg"):
            every = int(cfg.mlo.arch_every)
            steps = max(every, steps // every * every)
        rows = [
            Row(name, time_steps(method, batches, steps, self.args.warmup), n_labeled, n_unlabeled)
        ]
        if name == "genseg":
            batch = next(batches)
            images, masks = method.to_device(batch)
            new_masks = batch["new_mask"].to(self.runtime.device)
            synchronize()
            started = time.perf_counter()
            method.upper_update(images, masks, new_masks)
            synchronize()
            seconds = time.perf_counter() - started
            rows.append(
                Row(f"  upper step alone ({cfg.mlo.hypergrad})", seconds, n_labeled, n_unlabeled)
            )
        return rows

    def time_plain(self, extra: list[str]) -> Row:
        """The plain loop under the baseline's configuration: its train pairs (read by the
        reference's own reader), size, batch, precision, memory format and AdamW kernel."""
        cfg = self.compose("baseline", extra)
        n_labeled = int(cfg.n_labeled)
        if int(cfg.dataset.dims) != 2:
            return Row(PLAIN, None, n_labeled, "–", "2D datasets only")
        data, ref, runtime = self.run_data(cfg), self.reference, self.runtime
        size, channels = int(cfg.data.image_size), int(cfg.dataset.channels)
        root = dataset_root(cfg.dataset, cfg.paths.data_dir)
        pairs = ref.read_pairs(root, data.splits.train, channels, size)
        # the plain recipe is always AdamW; take genseg's kernel choice when it trains with AdamW
        fused = bool(cfg.optim.optimizer.get("fused", False)) if cfg.optim.name == "adamw" else True
        seed_everything(0)
        trainer = ref.PlainTraining(
            pairs,
            int(cfg.trainer.steps),
            int(cfg.seed),
            channels,
            runtime.device,
            channels_last=runtime.channels_last,
            fused=fused,
            precision=runtime.precision,
            batch_size=int(cfg.data.batch_size),
        )
        # built beforehand and cycled, exactly as the methods' batches are
        batches = itertools.cycle([trainer.batch() for _ in range(N_BATCHES)])
        seconds = time_steps(trainer, batches, self.args.steps, self.args.warmup)
        return Row(PLAIN, seconds, n_labeled, "–")


def flag_overrides(size: int | None, n_labeled: int | None) -> list[str]:
    out = [] if size is None else [f"data.image_size={size}"]
    return out if n_labeled is None else [*out, f"n_labeled={n_labeled}"]


def append_csv(path: Path, size: int, groups: list[list[Row]]) -> None:
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["image_size", "method", "n_labeled", "n_unlabeled", "seconds"])
        for row in (r for rows in groups for r in rows):
            seconds = "" if row.seconds is None else f"{row.seconds:.5f}"
            writer.writerow([size, row.name.strip(), row.n_labeled, row.n_unlabeled, seconds])


def print_table(console: Console, bench: Bench, groups: list[list[Row]], counts: bool) -> None:
    cfg, runtime, args = bench.cfg, bench.runtime, bench.args
    table = Table(
        title=(
            f"{cfg.dataset.name}, {cfg.data.image_size} px, batch "
            f"{cfg.data.batch_size}, {runtime.precision} on {runtime.device}, "
            f"torch threads {torch.get_num_threads()}, arch_every "
            f"{cfg.mlo.arch_every}, {args.steps} steps after {args.warmup}"
        )
    )
    columns = ["method", "n_labeled", "n_unlabeled"] if counts else ["method"]
    for column in (*columns, "s / iteration", "x baseline"):
        table.add_column(column)
    notes = []
    for rows in groups:
        # the ratio is to the group's first timed row: the first method at this n_labeled
        base = next((r.seconds for r in rows if r.seconds is not None), None)
        for row in rows:
            cells = [row.name, str(row.n_labeled), row.n_unlabeled] if counts else [row.name]
            if row.seconds is None:
                table.add_row(*cells, f"skipped: {row.skipped}", "–")
            else:
                table.add_row(*cells, f"{row.seconds:.3f}", f"{row.seconds / base:.2f}")
        times = {r.name: r.seconds for r in rows}
        if args.reference and times.get("baseline") and times.get(PLAIN):
            at = f" at n_labeled={rows[0].n_labeled}" if counts else ""
            notes.append(
                f"pipeline baseline / plain loop{at}: {times['baseline'] / times[PLAIN]:.2f}"
            )
    console.print(table)
    for note in notes:
        print(note)
    if args.reference and "baseline" not in args.methods:
        print("pipeline baseline / plain loop: add baseline to --methods for this ratio")
    if args.reference and cfg.optim.name != "adamw":
        print(f"note: the pipeline trains with {cfg.optim.name}, the plain loop with AdamW")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--methods", nargs="+", default=METHODS, help="the first is the reference")
    parser.add_argument(
        "--reference", action="store_true", help="also time reference_baseline.py's plain loop"
    )
    parser.add_argument("--sizes", nargs="+", type=int, help="image sizes: one table each")
    parser.add_argument("--labelled", nargs="+", type=int, help="n_labeled values to repeat for")
    parser.add_argument(
        "--unlabeled",
        nargs="+",
        type=unlabeled_count,
        help="n_unlabeled values (or `all`) for the combinations with '+'",
    )
    parser.add_argument("--csv", type=Path, help="append the rows to this CSV file")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=ph2")
    args = parser.parse_args()
    for flag, key in (("--sizes", "data.image_size"), ("--labelled", "n_labeled")):
        given = any(o.lstrip("+~").split("=")[0] == key for o in args.overrides)
        if getattr(args, flag[2:]) and given:
            parser.error(f"give {key} with {flag} or as an override, not both")
    if args.unlabeled and any(o.lstrip("+~").startswith("n_unlabeled=") for o in args.overrides):
        parser.error("give n_unlabeled with --unlabeled or as an override, not both")
    repo = Path(__file__).resolve().parents[1]
    os.environ.setdefault("GENSEG_DATA_DIR", str(repo.parent / "shared" / "datasets"))

    bench, console = Bench(args), Console()
    counts = bool(args.labelled or args.unlabeled)
    unlabeled = [f"n_unlabeled={'null' if n == 'all' else n}" for n in args.unlabeled or []]
    for size in args.sizes or [None]:
        groups = []
        for n_labeled in args.labelled or [None]:
            extra, rows = flag_overrides(size, n_labeled), []
            for name in args.methods:
                # n_unlabeled changes nothing for a method without '+': time it once
                for more in (unlabeled or [None]) if "+" in name else [None]:
                    rows += bench.time_method(name, [*extra, *([more] if more else [])])
            if args.reference:
                rows.append(bench.time_plain(extra))
            groups.append(rows)
        print_table(console, bench, groups, counts)
        if args.csv:
            append_csv(args.csv, int(bench.cfg.data.image_size), groups)
    print(
        "inference: every method predicts with the same segmenter; its cost equals the baseline's"
    )


if __name__ == "__main__":
    main()
