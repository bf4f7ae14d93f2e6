"""How useful each generator recipe is per CPU minute: pre-train it, then train on synthetic,
test on real (TSTR), one variant after the other in one process, on one split and seed.

Each variant is `name=override,override,...` (overrides of `genseg train`, applied on top of
`method=separate` and the shared overrides after the flags); an empty list is the current
default. For every variant the script pre-trains the generator from scratch (no cache), times
it, then trains a fresh segmenter for --tstr-steps on synthetic pairs only, exactly as a run's
`tstr` diagnostic does (`genseg_cli.engine.tstr`), and scores it on the real test set. One
reference row trains the same fresh segmenter on the real, augmented train pairs for as many
steps (train on real, test on real: the ceiling TSTR is read against).

    python scripts/generator_sweep.py dataset=busi n_labeled=100
    python scripts/generator_sweep.py --variant default= --variant l1_10=generator.lambda_l1=10 \
        --variant long=method.pretrain.steps=1500 dataset=ph2 n_labeled=40 --csv sweep.csv

`--seeds 0 1 2` repeats everything per seed (each seed its own split, as in `genseg train`);
`{seed}` in a variant's override stands for the seed, e.g. pseudo-labelled pairs from a teacher
trained on that seed's split (`genseg train ... method=baseline seed=S`, the run's folder):

    --variant pseudo=ssl=self_training,ssl.teacher_run=teachers/busi_s{seed},\
generator.pseudo_pairs.weight=1

`--previews DIR` keeps each variant's preview grids (DIR/<dataset>_<variant>_seed<seed>/).
Prints one table: variant, mean pre-training seconds, TSTR test Dice per seed and mean, and the
paired difference (per seed) to the first variant, which should be the current default.

`--summarise FILE...` trains nothing: it reads the --csv files of earlier sweeps (rows without a
seed column are seed 0) and prints one markdown table per dataset, each variant paired with
`default` on the seeds both have (median pre-training seconds: robust to a row taken while
another job shared the cores).

    python scripts/generator_sweep.py --summarise results/generator_tstr/tstr.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from method_setup import prepare, run_data, runtime_of
from rich.console import Console
from rich.table import Table

from genseg_cli.core.config import compose
from genseg_cli.core.runtime import seed_everything
from genseg_cli.data.batches import training_batches
from genseg_cli.engine.loop import build_method
from genseg_cli.engine.tstr import (
    train_fresh_and_score,
    train_on_synthetic_test_on_real,
    tstr_seed,
)

REFERENCE = "real pairs (reference)"
VARIANTS = [
    "default=",
    "steps_1500=method.pretrain.steps=1500",
    "l1_10=generator.lambda_l1=10",
    "width_32=generator.model.base_width=32,generator.model.max_width=256",
]


def parse_variant(text: str) -> tuple[str, list[str]]:
    """`name=override,override`; a comma inside brackets belongs to a list value
    (`bilinear=generator.model.upsample_ops=[transposed,bilinear]`)."""
    name, sep, overrides = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: write a variant as name=override,override")
    parts, depth, current = [], 0, ""
    for char in overrides:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return name, [o for o in [*parts, current] if o]


def real_reference(cfg, data, steps: int) -> dict:
    """The TSTR recipe with real augmented pairs instead of synthetic ones (train on real)."""
    method = build_method(cfg, runtime_of(cfg))  # for its spec, runtime and loss only
    batches = training_batches(data.train, method.spec, steps, tstr_seed(cfg), cfg.augment, None)
    return train_fresh_and_score(cfg, method, data, steps, map(method.to_device, batches))


CSV_COLUMNS = [
    "shared", "variant", "overrides", "seed", "pretrain_s", "tstr_dice", "grid", "grid_real",
]  # fmt: skip


def append_csv(path: Path | None, row: list) -> None:
    if path is None:
        return
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(CSV_COLUMNS)
        writer.writerow(row)


def score_variant(cfg, data, tstr_steps: int, previews: Path | None) -> dict[str, float]:
    """Pre-training seconds, TSTR test Dice and the grid scores (generator's images after
    pre-training, real images) of the generator `cfg` describes; its preview grids go to
    `previews` when given."""
    seed_everything(int(cfg.seed))
    runtime = runtime_of(cfg)
    method = build_method(cfg, runtime)
    started = time.perf_counter()
    prepare(method, cfg, data, previews)
    pretrain_s = time.perf_counter() - started
    tstr = train_on_synthetic_test_on_real(cfg, method, data, tstr_steps)
    grid = getattr(method, "grid", {})
    return {
        "pretrain_s": pretrain_s,
        "tstr": float(tstr["test"]["dice_mean"]),
        "grid": grid.get("pretrained", float("nan")),
        "grid_real": grid.get("real", float("nan")),
    }


def summarise_csv(paths: list[Path]) -> str:
    """Markdown tables of earlier sweeps' rows: per dataset, each variant against `default`."""
    import pandas as pd

    rows = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    rows["seed"] = rows["seed"].fillna(0).astype(int) if "seed" in rows else 0
    rows["setting"] = (
        rows["shared"].fillna("").str.replace("trainer.progress=false", "").str.strip()
    )
    rows = rows.drop_duplicates(["setting", "variant", "seed"], keep="last")
    out = []
    for setting, group in rows.groupby("setting", sort=False):
        dice = group.pivot(index="variant", columns="seed", values="tstr_dice")
        out += [
            f"{setting}:",
            "",
            "| variant | pre-training (s, median) | TSTR Dice per seed | mean "
            "| minus default per seed | wins | grid score (mean) |",
            "|---|---|---|---|---|---|---|",
        ]
        first = [v for v in (REFERENCE, "default") if v in dice.index]
        for variant in dict.fromkeys([*first, *group["variant"]]):
            scores = dice.loc[variant].dropna()
            seeds = ", ".join(f"{seed}: {d:.3f}" for seed, d in scores.items())
            took = group.loc[group["variant"] == variant, "pretrain_s"].median()
            paired, wins = "-", "-"
            if variant not in ("default", REFERENCE) and "default" in dice.index:
                both = [seed for seed in scores.index if pd.notna(dice.loc["default", seed])]
                diffs = [scores[seed] - dice.loc["default", seed] for seed in both]
                paired = ", ".join(f"{d:+.3f}" for d in diffs) or "-"
                wins = f"{sum(d > 0 for d in diffs)}/{len(diffs)}" if diffs else "-"
            took_text = "-" if variant == REFERENCE else f"{took:.0f}"
            grid = group.loc[group["variant"] == variant].get("grid", pd.Series(dtype=float))
            grid_text = f"{grid.mean():.2f}" if grid.notna().any() else "-"
            out.append(
                f"| {variant} | {took_text} | {seeds} | {scores.mean():.4f} | {paired} | {wins} "
                f"| {grid_text} |"
            )
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--summarise", type=Path, nargs="+", help="tables from earlier --csv")
    parser.add_argument(
        "--variant", action="append", type=parse_variant, help="name=override,...; repeatable"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="splits and seeds")
    parser.add_argument("--tstr-steps", type=int, default=300)
    parser.add_argument("--no-reference", action="store_true", help="skip the train-on-real row")
    parser.add_argument("--csv", type=Path, default=None, help="append each row to this file")
    parser.add_argument(
        "--previews", type=Path, default=None, help="keep each variant's preview grids here"
    )
    parser.add_argument("overrides", nargs="*", help="shared overrides, e.g. dataset=busi")
    args = parser.parse_args()
    if args.summarise:
        print(summarise_csv(args.summarise))
        return
    variants = args.variant or [parse_variant(v) for v in VARIANTS]
    if not args.no_reference:
        variants = [(REFERENCE, []), *variants]
    shared = [
        "method=separate", "method.pretrain.cache_dir=null", "generator.grid_score=true",
        *args.overrides,
    ]  # fmt: skip
    console = Console()
    dice: dict[str, dict[int, float]] = {name: {} for name, _ in variants}
    seconds: dict[str, list[float]] = {name: [] for name, _ in variants}
    for seed in args.seeds:
        data = None  # one split per seed, shared by every variant
        for name, overrides in variants:
            # `{seed}` in a variant's override: this seed (a teacher run per seed, say)
            chosen = [o.replace("{seed}", str(seed)) for o in overrides]
            cfg = compose("train", [*shared, f"seed={seed}", *chosen])
            data = data if data is not None else run_data(cfg, seed)
            if name == REFERENCE:
                seed_everything(seed)
                reference = real_reference(cfg, data, args.tstr_steps)
                found = {"pretrain_s": 0.0, "tstr": float(reference["test"]["dice_mean"])}
                found |= {"grid": float("nan"), "grid_real": float("nan")}
            else:
                where = f"{cfg.dataset.name}_{name}_seed{seed}"  # two sweeps may share one DIR
                folder = args.previews / where if args.previews else None
                found = score_variant(cfg, data, args.tstr_steps, folder)
                seconds[name].append(found["pretrain_s"])
            dice[name][seed] = found["tstr"]
            console.print(
                f"seed {seed} {name}: pretrain {found['pretrain_s']:.0f} s, TSTR Dice "
                f"{found['tstr']:.4f}, grid score {found['grid']:.2f} "
                f"(real {found['grid_real']:.2f})"
            )
            row = [
                " ".join(args.overrides), name, ",".join(overrides), seed,
                f"{found['pretrain_s']:.1f}", found["tstr"], found["grid"], found["grid_real"],
            ]  # fmt: skip
            append_csv(args.csv, row)
    console.print(sweep_table(args, variants, dice, seconds))


def sweep_table(args, variants, dice, seconds) -> Table:
    """Per variant: mean pre-training seconds, TSTR Dice per seed and mean, and the paired
    difference to the first variant that is not the reference."""
    table = Table(title=f"generator sweep: {' '.join(args.overrides) or 'jsrt defaults'}")
    columns = ["variant", "pretrain (s)", "TSTR Dice per seed", "mean", "minus first per seed"]
    for column in columns:
        table.add_column(column, justify="left" if column == "variant" else "right")
    first = next((name for name, _ in variants if name != REFERENCE), None)
    for name, _ in variants:
        scores = [dice[name][s] for s in args.seeds]
        took = f"{sum(seconds[name]) / len(seconds[name]):.0f}" if seconds[name] else "-"
        paired = "-"
        if name not in (REFERENCE, first):
            paired = ", ".join(f"{dice[name][s] - dice[first][s]:+.3f}" for s in args.seeds)
        per_seed = ", ".join(f"{d:.3f}" for d in scores)
        table.add_row(name, took, per_seed, f"{sum(scores) / len(scores):.4f}", paired)
    return table


if __name__ == "__main__":
    main()
