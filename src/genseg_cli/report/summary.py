"""Aggregate runs over seeds, pair methods with the reference, and measure label efficiency.

Runs are grouped by KEYS (dataset, backbone, setup, n_labeled, method with its variant) and paired
on PAIR_KEYS: two setups (profile / experiment) are never averaged, paired or compared. A variant
is compared with the reference of the same variant where one was run, else with the reference's
default runs, in the paired differences and in the label-efficiency table alike.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from genseg_cli.report.collect import KEYS, MACHINE_COLUMNS

PAIR_KEYS = ["dataset", "backbone", "setup", "n_labeled", "seed"]
ONE_BUDGET = "n/a: one budget"
NOT_METRICS = {*KEYS, "seed", "variant", "base_method", "run_dir", "n_unlabeled"}
NOT_METRICS |= {"setup", "start_weights", *MACHINE_COLUMNS}
# the paired tables' mean over a dataset's test sets (its own test split and each OOD set): the
# quantity a method is judged by ("wins on the mean over columns"); the name does
# not end in _dice, so no table or figure takes it for a test set of its own
SETS_MEAN = "mean_of_sets"


def with_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the grouping columns a hand-made table may lack: one setup, no variants."""
    missing: dict[str, object] = {}
    if "setup" not in frame.columns:
        missing["setup"] = ""
    if "variant" not in frame.columns:
        missing["variant"] = ""
    if "base_method" not in frame.columns:
        missing["base_method"] = frame["method"] if "method" in frame.columns else ""
    return frame.assign(**missing) if missing else frame


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The numeric result columns of a runs table (test_dice, test_iou, <ood>_dice, ...)."""
    return [c for c in runs.columns if c not in NOT_METRICS]


def dice_columns(runs: pd.DataFrame) -> list[str]:
    """test_dice first, then each OOD set's Dice column."""
    return [c for c in metric_columns(runs) if c.endswith("_dice")]


def is_set_dice(column: str) -> bool:
    """True for test_dice and an OOD set's `<name>_dice`; a class's column (test_anterior_dice)
    is a part of the test split, not a set."""
    return column.endswith("_dice") and (column == "test_dice" or not column.startswith("test_"))


def set_dice_columns(runs: pd.DataFrame) -> list[str]:
    """test_dice and each OOD set's Dice column."""
    return [c for c in dice_columns(runs) if is_set_dice(c)]


def sets_mean(diffs: pd.DataFrame, runs: pd.DataFrame) -> pd.Series:
    """Per row of `diffs`, the mean of its Dice differences over the test sets its dataset was
    scored on in `runs`; NaN where that dataset has a single set (the mean would repeat it) or the
    row lacks one of them (a mean over fewer sets is another quantity)."""
    means = pd.Series(np.nan, index=diffs.index, dtype=float)
    for dataset, rows in runs.groupby("dataset"):
        sets = [c for c in set_dice_columns(runs) if rows[c].notna().any()]
        if len(sets) > 1:
            mine = diffs.dataset == dataset
            means[mine] = diffs.loc[mine, sets].mean(axis=1, skipna=False)
    return means


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every metric, per dataset, backbone, setup, n_labeled and method
    (base_method and variant follow, for efficiency()).

    The std is the population std (ddof=0), so a single seed gives 0 rather than NaN.

    >>> aggregate(runs)[["method", "n_labeled", "test_dice_mean", "n_seeds"]]  # doctest: +SKIP
    """
    runs = with_defaults(runs)
    metrics = metric_columns(runs)
    groups = runs.groupby(KEYS, sort=True)
    mean = groups[metrics].mean().add_suffix("_mean")
    std = groups[metrics].std(ddof=0).add_suffix("_std")
    ordered = [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    table = mean.join(std)[ordered]
    table["n_seeds"] = groups.size()
    if "n_unlabeled" in runs.columns:  # images used without labels, shown beside the budget
        table.insert(0, "n_unlabeled", groups["n_unlabeled"].max())
    table[["base_method", "variant"]] = groups[["base_method", "variant"]].first()
    return table.reset_index()


def paired_differences(runs: pd.DataFrame, reference: str = "baseline") -> pd.DataFrame:
    """Per-seed `method - reference` Dice for every method run on the reference's seeds.

    One row per (dataset, backbone, n_labeled, seed, method) present for both; the columns of
    differences keep the Dice column names (test_dice, nlm_mc_dice, ...), followed by
    SETS_MEAN (their mean over the dataset's test sets) where some dataset has OOD sets. A
    variant is paired with the reference run of the same variant where there is one (an override
    both were trained with, e.g. data.image_size=256), else with the reference's default run; a
    variant of the reference method itself (a lever screen's `genseg [mlo.levers=...]` against
    reference `genseg`) is paired with the reference's default run.

    >>> paired_differences(runs, "baseline")[["method", "seed", "test_dice"]]  # doctest: +SKIP
    """
    runs = with_defaults(runs)
    dice = dice_columns(runs)
    base = runs.base_method  # the method without its variant (collect_runs writes it)
    ref = runs[base == reference][[*PAIR_KEYS, "variant", "method", *dice]]
    ref = ref.rename(columns={"method": "reference"})
    own_variant = (base == reference) & (runs.variant != "")
    others = runs[(base != reference) | own_variant][[*PAIR_KEYS, "variant", "method", *dice]]
    others = others.reset_index(drop=True).assign(row=lambda f: range(len(f)))
    matched = others.merge(
        ref, on=[*PAIR_KEYS, "variant"], how="left", suffixes=("", "_ref"), indicator=True
    )
    # a variant of the reference method finds itself here: it goes to the default run instead
    same = matched[(matched._merge == "both") & (matched.method != matched.reference)]
    same = same.drop(columns="_merge")
    alone = others[~others.row.isin(same.row)]
    default = ref[ref.variant == ""].drop(columns="variant")
    fallback = alone.merge(default, on=PAIR_KEYS, suffixes=("", "_ref"))
    both = pd.concat([same, fallback], ignore_index=True)
    for col in dice:
        both[col] = both[col] - both[f"{col}_ref"]
    both = both.sort_values([*PAIR_KEYS, "method"], kind="stable")
    if len(set_dice_columns(runs)) > 1:
        dice = [*dice, SETS_MEAN]
        both[SETS_MEAN] = sets_mean(both, runs)
    return both[[*PAIR_KEYS, "method", "reference", *dice]].reset_index(drop=True)


def paired(runs: pd.DataFrame, reference: str = "baseline") -> pd.DataFrame:
    """Mean and std (ddof=0) of the per-seed differences to `reference`, and the seeds won.

    Columns: dataset, backbone, n_labeled, method, reference, n_pairs, and for each Dice
    column (and SETS_MEAN where paired_differences has it) `<col>_diff_mean`, `<col>_diff_std`,
    `<col>_wins` (seeds where method > reference) and `<col>_n` (pairs scored on that column).

    >>> paired(runs, "baseline")  # doctest: +SKIP
    """
    diffs = paired_differences(runs, reference)
    keys = [*KEYS, "reference"]
    groups = diffs.groupby(keys, sort=True)
    out = groups.size().rename("n_pairs").to_frame()
    shown = dice_columns(runs) + [SETS_MEAN] * (SETS_MEAN in diffs.columns)
    for col in shown:
        out[f"{col}_diff_mean"] = groups[col].mean()
        out[f"{col}_diff_std"] = groups[col].std(ddof=0)
        out[f"{col}_wins"] = groups[col].agg(lambda d: int((d > 0).sum()))
        out[f"{col}_n"] = groups[col].count()  # pairs with a score: a run may lack an OOD set
    return out.reset_index()


def labels_needed(curve: Iterable[tuple[float, float]], target: float) -> float | str:
    """Labels a method needs to reach `target` Dice on its measured (n_labeled, Dice) curve.

    Linear interpolation between the last budget below `target` and the first that reaches it.
    "> max" when no measured budget reaches it; "<= min" when the smallest already beats it;
    "n/a: one budget" when the curve has a single budget (nothing to interpolate on).

    >>> labels_needed([(4, 0.5), (8, 0.75), (16, 1.0)], 0.625)
    6.0
    >>> labels_needed([(5, 0.80), (10, 0.90)], 0.99), labels_needed([(5, 0.80), (10, 0.9)], 0.7)
    ('> max', '<= min')
    >>> labels_needed([(40, 0.80)], 0.85)
    'n/a: one budget'
    """
    points = sorted((float(n), float(d)) for n, d in curve if not np.isnan(d))
    if len(points) < 2:  # a factor needs budgets around the score; one budget says nothing
        return ONE_BUDGET
    for i, (n, d) in enumerate(points):
        if d < target:
            continue
        if i == 0:
            return n if d == target else "<= min"
        n0, d0 = points[i - 1]
        return n0 + (target - d0) * (n - n0) / (d - d0)
    return "> max"


def efficiency_factor(curve: Iterable[tuple[float, float]], target: float, n: float) -> float | str:
    """How many times more labels the curve's method needs than `n` to reach `target` Dice.

    >>> efficiency_factor([(4, 0.5), (8, 0.75), (16, 1.0)], target=0.875, n=4)
    3.0
    """
    needed = labels_needed(curve, target)
    return needed if isinstance(needed, str) else needed / n


def efficiency(
    summary: pd.DataFrame, method: str = "genseg", reference: str = "baseline"
) -> pd.DataFrame:
    """Label-efficiency factor of `method` (and of each of its variants) over `reference`, for
    each dataset/backbone/setup/budget.

    For each budget n with a mean test Dice of `method`, the labels the reference needs to reach
    that Dice (interpolated on its mean curve) divided by n; "> max" / "<= min" out of range,
    "n/a: one budget" when the reference curve has a single budget. A variant is measured against
    the reference curve of the same variant where there is one, else the reference's default
    curve (the `reference` column names the curve used).

    >>> efficiency(aggregate(runs), "genseg", "baseline")  # doctest: +SKIP
    """
    summary = with_defaults(summary)
    rows = []
    for (dataset, backbone, setup), group in summary.groupby(
        ["dataset", "backbone", "setup"], sort=True
    ):
        refs = group[group.base_method == reference]
        for variant, runs in group[group.base_method == method].groupby("variant", sort=True):
            ref = refs[refs.variant == variant]
            if ref.empty:
                ref = refs[refs.variant == ""]
            if ref.empty:
                continue
            curve = list(zip(ref.n_labeled, ref.test_dice_mean, strict=True))
            for _, row in runs.sort_values("n_labeled").iterrows():
                rows.append(
                    {
                        "dataset": dataset,
                        "backbone": backbone,
                        "setup": setup,
                        "n_labeled": int(row.n_labeled),
                        "method": row.method,
                        "reference": ref.method.iloc[0],
                        "method_test_dice": row.test_dice_mean,
                        "reference_labels_needed": labels_needed(curve, row.test_dice_mean),
                        "factor": efficiency_factor(curve, row.test_dice_mean, row.n_labeled),
                    }
                )
    columns = ["dataset", "backbone", "setup", "n_labeled", "method", "reference"]
    return pd.DataFrame(
        rows, columns=[*columns, "method_test_dice", "reference_labels_needed", "factor"]
    )
