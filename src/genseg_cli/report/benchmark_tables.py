"""The benchmark's tables: one markdown page to read at a glance, the csv files behind it and a
figure of the paired differences.

Files written to the tables folder: runs.csv (one row per finished run, with its block, method
and machine fingerprint), blocks.csv (each block: complete, broken and why, machine),
scores.csv (mean and std over valid blocks per method, checkpoint and set), block_differences.csv
(every paired difference), paired.csv (their mean, 95% interval and tests) and benchmark.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from genseg_cli.core.files import write_csv
from genseg_cli.report.blocks import (
    IN_DOMAIN,
    INTERVAL_FROM,
    MEAN,
    OOD_MEAN,
    block_differences,
    check_blocks,
    long_scores,
    ood_sets,
    summarise_differences,
    summarise_methods,
)

CHECKPOINT_TITLES = {
    "best_val": "the kept checkpoint (best validation Dice)",
    "final": "the final weights (last step)",
}


@dataclass(frozen=True)
class SuiteInfo:
    """What the tables say about the suite (the report layer knows no suite files)."""

    name: str
    description: str
    reference: str
    methods: tuple[str, ...]
    blocks: tuple[str, ...]  # every block name the suite expects


def _num(value: float, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _p(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _spread(mean: float, std: float) -> str:
    """mean ± std; the mean alone where one block leaves no spread."""
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return _num(mean)
    return f"{_num(mean)} ± {_num(std)}"


def _ci(row: pd.Series) -> str:
    if math.isnan(row.d_dice_ci_low):
        return f"{_num(row.d_dice_mean, True)} [{INTERVAL_FROM}+ blocks for an interval]"
    return (
        f"{_num(row.d_dice_mean, True)} [{_num(row.d_dice_ci_low, True)}, "
        f"{_num(row.d_dice_ci_high, True)}]"
    )


def _lookup(frame: pd.DataFrame, **keys: object) -> pd.Series | None:
    if frame.empty:
        return None
    mask = pd.Series(True, index=frame.index)
    for key, value in keys.items():
        mask &= frame[key] == value
    rows = frame[mask]
    return None if rows.empty else rows.iloc[0]


def glance_table(
    info: SuiteInfo, runs: pd.DataFrame, scores: pd.DataFrame, paired: pd.DataFrame, checkpoint: str
) -> list[str]:
    """Per dataset and method: in-domain, out-of-domain and mean Dice, and the paired
    difference of the mean to the reference with its interval, wins and sign test."""
    lines = [
        f"| dataset | method | blocks | in-domain Dice | OOD Dice | mean Dice | "
        f"Δ mean Dice vs {info.reference} [95% CI] | wins | sign p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, budget), _ in scores.groupby(["dataset", "budget"], sort=False):
        ood = ood_sets(runs, dataset)
        ood_set = OOD_MEAN if len(ood) > 1 else (ood[0] if ood else None)
        for method in info.methods:
            keys = {"dataset": dataset, "budget": budget, "method": method}
            mean = _lookup(scores, **keys, checkpoint=checkpoint, set=MEAN)
            if mean is None:
                continue
            own = _lookup(scores, **keys, checkpoint=checkpoint, set=IN_DOMAIN)
            out = _lookup(scores, **keys, checkpoint=checkpoint, set=ood_set) if ood_set else None
            diff = _lookup(paired, **keys, checkpoint=checkpoint, set=MEAN)
            cells = [
                f"{dataset}-{budget}",
                f"**{method}**" if method == info.reference else method,
                str(int(mean.blocks)),
                _spread(own.dice_mean, own.dice_std) if own is not None else "-",
                _spread(out.dice_mean, out.dice_std) if out is not None else "-",
                _spread(mean.dice_mean, mean.dice_std),
                _ci(diff) if diff is not None else "(reference)",
                f"{int(diff.wins)}/{int(diff.blocks)}" if diff is not None else "-",
                _p(diff.sign_p) if diff is not None else "-",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def sets_table(scores: pd.DataFrame, paired: pd.DataFrame) -> list[str]:
    lines = [
        "| dataset | method | checkpoint | set | blocks | Dice | IoU | Δ Dice [95% CI] | wins | "
        "Wilcoxon p |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in scores.iterrows():
        diff = _lookup(
            paired,
            dataset=row.dataset,
            budget=row.budget,
            method=row.method,
            checkpoint=row.checkpoint,
            set=row.set,
        )
        cells = [
            f"{row.dataset}-{row.budget}",
            row.method,
            row.checkpoint,
            row.set,
            str(int(row.blocks)),
            _spread(row.dice_mean, row.dice_std),
            _spread(row.iou_mean, row.iou_std),
            _ci(diff) if diff is not None else "-",
            f"{int(diff.wins)}/{int(diff.blocks)}" if diff is not None else "-",
            _p(diff.wilcoxon_p) if diff is not None else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def per_block_table(diffs: pd.DataFrame, blocks: pd.DataFrame) -> list[str]:
    lines = [
        "| block | machine | method | Δ mean Dice (best_val) | Δ mean Dice (final) |",
        "|---|---|---|---|---|",
    ]
    mean = diffs[diffs.set == MEAN]
    for (block, method), group in mean.groupby(["block", "method"], sort=False):
        machine = blocks.loc[blocks.block == block, "machine"].iloc[0]
        kept = group[group.checkpoint == "best_val"].d_dice
        final = group[group.checkpoint == "final"].d_dice
        cells = [
            block,
            str(machine),
            method,
            _num(float(kept.iloc[0]), True) if len(kept) else "-",
            _num(float(final.iloc[0]), True) if len(final) else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def blocks_table(info: SuiteInfo, blocks: pd.DataFrame) -> list[str]:
    lines = [
        "| block | state | machine | precision | threads | note |",
        "|---|---|---|---|---|---|",
    ]
    known = {row.block: row for row in blocks.itertuples()}
    for name in info.blocks:
        row = known.get(name)
        if row is None:
            lines.append(f"| {name} | not run | - | - | - | - |")
            continue
        state = "broken" if row.broken else ("complete" if row.complete else "incomplete")
        note = row.why if row.broken else (f"missing: {row.missing}" if row.missing else "")
        cells = [name, state, str(row.machine), str(row.precision), str(row.threads), note]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_benchmark_tables(info: SuiteInfo, runs: pd.DataFrame, folder: Path) -> str:
    """Write every table of a benchmark into `folder`; return benchmark.md's text."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "runs.csv", runs)
    blocks = check_blocks(runs, list(info.methods)) if not runs.empty else pd.DataFrame()
    valid = blocks[~blocks.broken] if not blocks.empty else blocks
    scores = long_scores(runs) if not runs.empty else pd.DataFrame()
    if valid.empty or scores.empty:
        summary = diffs = paired = pd.DataFrame()
    else:
        summary = summarise_methods(scores, valid)
        diffs = block_differences(scores, info.reference, valid)
        paired = summarise_differences(diffs, info.reference)
    for name, frame in [
        ("blocks.csv", blocks),
        ("scores.csv", summary),
        ("block_differences.csv", diffs),
        ("paired.csv", paired),
    ]:
        write_csv(folder / name, frame)
    text = render(info, runs, blocks, summary, diffs, paired)
    (folder / "benchmark.md").write_text(text)
    if not paired.empty:
        from genseg_cli.report.benchmark_figure import forest_plot  # matplotlib: only here

        forest_plot(paired, info, folder / "benchmark.png")
    return text


def render(
    info: SuiteInfo,
    runs: pd.DataFrame,
    blocks: pd.DataFrame,
    summary: pd.DataFrame,
    diffs: pd.DataFrame,
    paired: pd.DataFrame,
) -> str:
    n_complete = int((blocks.complete & ~blocks.broken).sum()) if not blocks.empty else 0
    broken = blocks[blocks.broken] if not blocks.empty else blocks
    machines = sorted(set(blocks.machine)) if not blocks.empty else []
    lines = [
        f"# Benchmark `{info.name}`",
        "",
        f"{info.description}. Reference method: {info.reference}. "
        f"Blocks complete and valid: {n_complete} of {len(info.blocks)}"
        + (f"; broken (not averaged): {', '.join(broken.block)}" if not broken.empty else "")
        + ".",
        "",
        "A block is one (dataset, budget, seed); every difference is taken inside a block "
        "whose runs share one machine, precision, thread count and code commit. Mean ± std over "
        "blocks; Δ: mean of the per-block differences, 95% bootstrap interval over blocks (from "
        "three blocks on); wins: blocks where the method is above the reference; sign p: "
        "two-sided sign test. "
        "mean Dice: in-domain and each out-of-domain set weighted alike.",
        "",
        f"Machines: {'; '.join(machines) if machines else 'none yet'}.",
        "",
    ]
    if summary.empty:
        lines += ["No valid block has finished yet.", ""]
    else:
        for checkpoint, title in CHECKPOINT_TITLES.items():
            if not (summary.checkpoint == checkpoint).any():
                continue
            lines += [f"## Scored with {title}", ""]
            lines += glance_table(info, runs, summary, paired, checkpoint)
            lines.append("")
        lines += ["## Per-block differences", ""]
        lines += per_block_table(diffs, blocks)
        lines += ["", "## Each test set", ""]
        lines += sets_table(summary, paired)
        lines.append("")
    lines += ["## Blocks", ""]
    lines += blocks_table(info, blocks)
    return "\n".join(lines) + "\n"
