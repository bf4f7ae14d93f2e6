"""Paired statistics over benchmark blocks.

A block is (dataset, budget, seed) with one run per method. Differences to the reference are
taken inside a block only, and only in a block whose runs share one machine fingerprint
(`BLOCK_KEYS`): a block whose runs differ is `broken`, named in the tables and never averaged.
Over the valid blocks each difference gets its mean, a 95% bootstrap interval (blocks resampled
with replacement), the blocks won, a two-sided sign test and, from five blocks on, Wilcoxon's
signed-rank test.

Scores are read per test set: `in-domain` (the dataset's test split), each out-of-domain set by
name, `ood` (their mean, with two or more) and `mean` (in-domain and every out-of-domain set
weighted alike; the in-domain score alone for a dataset scored on no other set). Each for both
checkpoints: `best_val` (the kept one) and `final` (the last step's weights).

>>> bootstrap_ci([0.01, 0.02, 0.03], seed=0)  # doctest: +SKIP
(0.01, 0.03)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from genseg_cli.core.fingerprint import BLOCK_KEYS
from genseg_cli.report.collect import MACHINE_COLUMNS

BLOCK_COLUMNS = ["dataset", "budget", "seed", "block"]
CHECKPOINTS = {"best_val": "", "final": "_final"}  # checkpoint -> column suffix
IN_DOMAIN, OOD_MEAN, MEAN = "in-domain", "ood", "mean"
BOOTSTRAP_DRAWS = 10_000
WILCOXON_FROM = 5  # below five pairs no two-sided signed-rank p can reach 0.05
INTERVAL_FROM = 3  # a bootstrap over one or two blocks only restates them: no interval below three


def bootstrap_ci(
    values: np.ndarray | list[float], level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling the values with replacement; NaN
    for fewer than INTERVAL_FROM values."""
    values = np.asarray(values, dtype=float)
    if len(values) < INTERVAL_FROM:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(BOOTSTRAP_DRAWS, len(values))).mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def sign_test_p(values: np.ndarray | list[float]) -> float:
    """Two-sided sign test of a zero median (ties dropped); NaN without a non-zero value."""
    values = np.asarray(values, dtype=float)
    positive, negative = int((values > 0).sum()), int((values < 0).sum())
    if positive + negative == 0:
        return math.nan
    return float(stats.binomtest(positive, positive + negative, 0.5).pvalue)


def wilcoxon_p(values: np.ndarray | list[float]) -> float:
    """Two-sided Wilcoxon signed-rank p (exact where scipy can); NaN below WILCOXON_FROM."""
    values = np.asarray(values, dtype=float)
    if len(values) < WILCOXON_FROM or not np.any(values):
        return math.nan
    return float(stats.wilcoxon(values).pvalue)


def ood_sets(runs: pd.DataFrame, dataset: str) -> list[str]:
    """The out-of-domain sets a dataset's runs were scored on (from the `<set>_dice` columns)."""
    rows = runs[runs.dataset == dataset]
    names = []
    for column in rows.columns:
        is_ood = column.endswith("_dice") and not column.startswith("test_")
        if is_ood and rows[column].notna().any():
            names.append(column[: -len("_dice")])
    return sorted(names)


def check_blocks(runs: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """One row per block: its runs, `complete` (every method done), `broken` with the reason
    (the runs' fingerprints differ, or a run has none), and the machine it ran on."""
    rows = []
    for keys, group in runs.groupby(BLOCK_COLUMNS, sort=False):
        row = dict(zip(BLOCK_COLUMNS, keys, strict=True))
        have = set(group.method)
        row["runs"] = len(group)
        row["missing"] = " ".join(m for m in methods if m not in have)
        row["complete"] = not row["missing"]
        reasons = []
        for key, column in zip(BLOCK_KEYS, MACHINE_COLUMNS, strict=True):
            values = group[column].fillna("").astype(str)
            if (values == "").any():
                without = group.method[values == ""].tolist()
                reasons.append(f"no fingerprint ({key}) for {', '.join(without)}")
            elif values.nunique() > 1:
                pairs = [f"{m}: {v}" for m, v in zip(group.method, values, strict=True)]
                reasons.append(f"{key} differs ({'; '.join(pairs)})")
        row["broken"] = bool(reasons)
        row["why"] = " | ".join(reasons)
        first = group.iloc[0]
        row["machine"] = machine_of(first)
        row["precision"] = first.get("machine_precision", "")
        row["threads"] = first.get("machine_threads", "")
        rows.append(row)
    return pd.DataFrame(rows)


def machine_of(row: pd.Series) -> str:
    gpu = str(row.get("machine_gpu", "") or "none")
    if gpu not in ("none", "nan"):
        return gpu
    return f"{row.get('machine_cpu_model', '')} [{row.get('machine_cpu_flags', '')}]"


def long_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run, checkpoint and set: dice and iou (sets as in the module docstring)."""
    rows = []
    for dataset, group in runs.groupby("dataset", sort=False):
        ood = ood_sets(runs, dataset)
        for checkpoint, suffix in CHECKPOINTS.items():
            columns = {IN_DOMAIN: "test", **{name: name for name in ood}}
            if f"test_dice{suffix}" not in group.columns:
                continue
            for _, run in group.iterrows():
                base = {c: run[c] for c in [*BLOCK_COLUMNS, "method"]}
                scores = {
                    name: (run.get(f"{col}_dice{suffix}"), run.get(f"{col}_iou{suffix}"))
                    for name, col in columns.items()
                }
                if any(pd.isna(d) for d, _ in scores.values()):
                    continue
                if len(ood) > 1:
                    scores[OOD_MEAN] = tuple(
                        float(np.mean([scores[n][i] for n in ood])) for i in (0, 1)
                    )
                scores[MEAN] = tuple(
                    float(np.mean([scores[n][i] for n in columns])) for i in (0, 1)
                )
                for name, (dice, iou) in scores.items():
                    rows.append(
                        {**base, "checkpoint": checkpoint, "set": name, "dice": dice, "iou": iou}
                    )
    return pd.DataFrame(rows)


def block_differences(scores: pd.DataFrame, reference: str, valid: pd.DataFrame) -> pd.DataFrame:
    """Per valid block, method, checkpoint and set: Dice and IoU minus the reference's."""
    keys = [*BLOCK_COLUMNS, "checkpoint", "set"]
    scores = scores.merge(valid[BLOCK_COLUMNS], on=BLOCK_COLUMNS)
    ref = scores[scores.method == reference].drop(columns="method")
    others = scores[scores.method != reference]
    both = others.merge(ref, on=keys, suffixes=("", "_ref"))
    both["d_dice"] = both.dice - both.dice_ref
    both["d_iou"] = both.iou - both.iou_ref
    return both[[*keys, "method", "d_dice", "d_iou"]]


def summarise_methods(scores: pd.DataFrame, valid: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, budget, method, checkpoint and set: mean and std (ddof=1) over valid blocks."""
    scores = scores.merge(valid[BLOCK_COLUMNS], on=BLOCK_COLUMNS)
    keys = ["dataset", "budget", "method", "checkpoint", "set"]
    grouped = scores.groupby(keys, sort=False)
    table = grouped.agg(
        blocks=("dice", "size"),
        dice_mean=("dice", "mean"),
        dice_std=("dice", "std"),
        iou_mean=("iou", "mean"),
        iou_std=("iou", "std"),
    )
    return table.reset_index()


def summarise_differences(diffs: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per dataset, budget, method, checkpoint and set: the paired difference's mean, 95%
    bootstrap interval, blocks won, sign test and Wilcoxon p."""
    rows = []
    keys = ["dataset", "budget", "method", "checkpoint", "set"]
    for values, group in diffs.groupby(keys, sort=False):
        d = group.d_dice.to_numpy()
        low, high = bootstrap_ci(d)
        rows.append(
            {
                **dict(zip(keys, values, strict=True)),
                "reference": reference,
                "blocks": len(d),
                "d_dice_mean": float(d.mean()),
                "d_dice_ci_low": low,
                "d_dice_ci_high": high,
                "d_iou_mean": float(group.d_iou.mean()),
                "wins": int((d > 0).sum()),
                "sign_p": sign_test_p(d),
                "wilcoxon_p": wilcoxon_p(d),
            }
        )
    return pd.DataFrame(rows)
