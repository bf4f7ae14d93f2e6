"""Issue 14's goal, read off a report: is a method above two references on enough seeds?

The goal asks, per dataset, whether default genseg is above the strong baseline and above
separate on the mean Dice over the dataset's test sets (its test split and out-of-domain sets)
in at least two of three seeds. `genseg report` writes the per-seed differences
(paired_seeds.csv, column mean_of_sets; the test Dice where a dataset has no out-of-domain set);
this prints them side by side for two references, one row per dataset, and says which rows count.

    genseg report runs_csv=results/final_table/runs.csv out=results/final_table
    genseg report runs_csv=results/final_table/runs.csv reference=separate \
        out=results/final_table/vs_separate
    python scripts/goal_table.py results/final_table/paired_seeds.csv \
        results/final_table/vs_separate/paired_seeds.csv

A lever of a screen against the baseline and against default genseg, the same way:

    python scripts/goal_table.py results/lever_busi/paired_seeds.csv \
        results/lever_busi/vs_genseg/paired_seeds.csv \
        --method "genseg [mlo.learn_synthetic_weight=true]"
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd


def seed_differences(paired_seeds: pd.DataFrame, method: str) -> dict[str, pd.Series]:
    """Per dataset and label budget ("busi-100"), the method's per-seed difference on the mean
    over test sets, indexed by seed. `method` is a report label: "genseg" is the default run,
    "genseg [mlo.learn_synthetic_weight=true]" a variant."""
    rows = paired_seeds[paired_seeds.method == method]
    per_dataset = {}
    for (dataset, n_labeled), group in rows.groupby(["dataset", "n_labeled"]):
        if group.seed.duplicated().any():
            raise ValueError(
                f"{dataset}-{n_labeled}: two rows of {method!r} for one seed (several setups or "
                "backbones in one report); report each setup on its own"
            )
        group = group.sort_values("seed").set_index("seed")
        # a report whose datasets have no out-of-domain set has no mean_of_sets column
        mean = group["mean_of_sets"] if "mean_of_sets" in group else group["test_dice"]
        per_dataset[f"{dataset}-{n_labeled}"] = mean.fillna(group["test_dice"])
    return per_dataset


def described(values: pd.Series | None) -> str:
    if values is None or values.empty:
        return "-"
    listed = ", ".join(f"{v:+.4f}" for v in values)
    return f"{listed} ({int((values > 0).sum())}/{len(values)}; mean {values.mean():+.4f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paired_seeds", nargs=2, help="paired_seeds.csv of two references")
    parser.add_argument("--method", default="genseg")
    parser.add_argument("--wins", type=int, default=2, help="seeds a row must win (default 2)")
    args = parser.parse_args(argv)
    tables = []
    for path in args.paired_seeds:
        try:
            table = pd.read_csv(path)
        except (OSError, pd.errors.ParserError) as error:
            print(
                f"{path}: cannot read it ({error}); give a report's paired_seeds.csv",
                file=sys.stderr,
            )
            return 2
        missing = {"dataset", "n_labeled", "seed", "method", "reference", "test_dice"} - set(table)
        if missing or table.empty:
            print(
                f"{path}: no paired rows or no column {sorted(missing)}; give the paired_seeds.csv "
                "that `genseg report` writes",
                file=sys.stderr,
            )
            return 2
        tables.append(table)
    references = [table.reference.iloc[0] for table in tables]
    try:
        differences = [seed_differences(table, args.method) for table in tables]
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    datasets = sorted(set(differences[0]) | set(differences[1]))
    if not datasets:
        print(
            f"no paired rows of {args.method!r} in {' or '.join(args.paired_seeds)}; give a method "
            "label of the report (e.g. genseg)",
            file=sys.stderr,
        )
        return 2
    header = [f"{args.method} minus {reference}" for reference in references]
    print(f"| dataset | {' | '.join(header)} | counts |")
    print("|---|" + "---|" * (len(header) + 1))
    counted = 0
    for dataset in datasets:
        cells = [found.get(dataset) for found in differences]
        counts = all(c is not None and int((c > 0).sum()) >= args.wins for c in cells)
        counted += counts
        print(
            f"| {dataset} | {' | '.join(described(c) for c in cells)} | "
            f"{'yes' if counts else 'no'} |"
        )
    print(
        f"\n{counted} of {len(datasets)} datasets: {args.method} above {references[0]} and "
        f"{references[1]} in at least {args.wins} seeds (mean Dice over each dataset's test sets)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
