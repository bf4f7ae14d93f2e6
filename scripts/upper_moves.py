"""What the upper level moved in genseg runs: each upper-level parameter's first and last logged
value, read from the runs' history.csv.

A lever screen says whether a lever helped; this says whether the hypergradient moved it at all,
so that "the lever helped" can be told apart from "a fixed random augmentation helped". Per run:
every `lever/<name>/<parameter>` and `mlo/synthetic_weight` (learned lambda) column, first and
last logged value; the kernel mixtures (`alpha/<layer>/<op>`, softmax weights, uniform within a
layer at the start) as the range of the weights at the last step and the largest change of one
weight.

    python scripts/upper_moves.py GRID/ph2_method-genseg_mlo.levers-_appearance__seed0 ...
    python scripts/upper_moves.py GRID            # every run folder under GRID with a history
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

NAMED_PREFIXES = ("lever/", "mlo/synthetic_weight")


def run_folders(paths: list[Path]) -> list[Path]:
    """The run folders named, or found one level under a grid folder."""
    runs = []
    for path in paths:
        if (path / "history.csv").is_file():
            runs.append(path)
        else:
            runs.extend(sorted(p.parent for p in path.glob("*/history.csv")))
    return runs


def moves(history: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(parameter, first logged, last logged) rows of one run's upper-level parameters."""
    rows = []
    for column in history.columns:
        if column.startswith(NAMED_PREFIXES):
            logged = history[["step", column]].dropna()
            if logged.empty:
                continue
            first, last = logged.iloc[0], logged.iloc[-1]
            rows.append(
                (
                    column,
                    f"{first[column]:.4f} (step {int(first.step)})",
                    f"{last[column]:.4f} (step {int(last.step)})",
                )
            )
    alpha = [c for c in history.columns if c.startswith("alpha/")]
    logged = history[["step", *alpha]].dropna() if alpha else pd.DataFrame()
    if not logged.empty:
        first, last = logged[alpha].iloc[0], logged[alpha].iloc[-1]
        layer_of = {c: c.rsplit("/", 1)[0] for c in alpha}
        ops = Counter(layer_of.values())
        uniform = pd.Series({c: 1 / ops[layer_of[c]] for c in alpha})  # a layer's start weights
        rows.append(
            (
                f"alpha ({len(ops)} layers, {len(alpha)} weights)",
                f"{first.min():.4f}..{first.max():.4f} (step {int(logged.step.iloc[0])})",
                f"{last.min():.4f}..{last.max():.4f} (step {int(logged.step.iloc[-1])}); "
                f"largest change from uniform: {(last - uniform).abs().max():.4f}",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run folders or grid folders")
    args = parser.parse_args(argv)
    runs = run_folders(args.paths)
    if not runs:
        names = ", ".join(map(str, args.paths))
        print(f"{names}: no history.csv here or one level below; give run folders", file=sys.stderr)
        return 2
    print("| run | parameter | first logged | last logged |")
    print("|---|---|---|---|")
    for run in runs:
        try:
            history = pd.read_csv(run / "history.csv")
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            print(f"{run / 'history.csv'}: cannot read it ({error})", file=sys.stderr)
            return 2
        if "step" not in history:
            print(f"{run / 'history.csv'}: no step column; give a genseg run", file=sys.stderr)
            return 2
        for parameter, first, last in moves(history) or [("(no upper-level parameter)", "-", "-")]:
            print(f"| {run.name} | {parameter} | {first} | {last} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
