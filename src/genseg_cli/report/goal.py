"""The goal view of a report: is a method above two references in enough seeds, per dataset?

`genseg report ... view=goal reference=baseline,separate [method=genseg] [wins=2]`: per dataset
and label budget, the method's per-seed Dice difference to each reference on the mean over the
dataset's test sets (its test split and out-of-domain sets; the test Dice where it has none),
side by side, and whether it is above both references in at least `wins` seeds.
"""

from __future__ import annotations

import pandas as pd

from genseg_cli.core.errors import GensegError
from genseg_cli.report.summary import SETS_MEAN, paired_differences


def seed_differences(paired_seeds: pd.DataFrame, method: str) -> dict[str, pd.Series]:
    """Per dataset and label budget ("busi-100"), the method's per-seed difference on the mean
    over test sets, indexed by seed. `method` is a report label: "genseg" is the default run,
    "genseg [mlo.learn_synthetic_weight=true]" a variant."""
    rows = paired_seeds[paired_seeds.method == method]
    per_dataset = {}
    for (dataset, n_labeled), group in rows.groupby(["dataset", "n_labeled"]):
        if group.seed.duplicated().any():
            raise GensegError(
                f"{dataset}-{n_labeled}: two runs of {method!r} for one seed (several setups or "
                "backbones in one report); report each setup on its own"
            )
        group = group.sort_values("seed").set_index("seed")
        # a dataset without out-of-domain sets has no mean over sets: its test Dice is the score
        mean = group[SETS_MEAN] if SETS_MEAN in group else group["test_dice"]
        per_dataset[f"{dataset}-{n_labeled}"] = mean.fillna(group["test_dice"])
    return per_dataset


def described(values: pd.Series | None) -> str:
    """'+0.0500, -0.0100 (1/2; mean +0.0200)': each seed, the seeds above zero, the mean."""
    if values is None or values.empty:
        return "-"
    listed = ", ".join(f"{v:+.4f}" for v in values)
    return f"{listed} ({int((values > 0).sum())}/{len(values)}; mean {values.mean():+.4f})"


def references_of(reference: str) -> list[str]:
    """The two references of `reference=A,B`."""
    names = [name.strip() for name in reference.split(",") if name.strip()]
    if len(names) != 2:
        raise GensegError(
            f"view=goal compares a method with two references, not reference={reference}; "
            "give two, e.g. reference=baseline,separate"
        )
    return names


def goal_markdown(runs: pd.DataFrame, method: str, reference: str, wins: int = 2) -> str:
    """The goal table (Markdown) and its one-line verdict, from a report's runs."""
    references = references_of(reference)
    differences = [seed_differences(paired_differences(runs, name), method) for name in references]
    datasets = sorted(set(differences[0]) | set(differences[1]))
    if not datasets:
        known = ", ".join(sorted(runs.method.unique()))
        raise GensegError(
            f"no runs of method={method} paired with {' or '.join(references)} (same dataset, "
            f"labels and seed); methods here: {known}"
        )
    header = [f"{method} minus {name}" for name in references]
    lines = [f"| dataset | {' | '.join(header)} | counts |", "|" + "---|" * (len(header) + 2)]
    counted = 0
    for dataset in datasets:
        cells = [found.get(dataset) for found in differences]
        counts = all(c is not None and int((c > 0).sum()) >= wins for c in cells)
        counted += counts
        shown = " | ".join(described(c) for c in cells)
        lines.append(f"| {dataset} | {shown} | {'yes' if counts else 'no'} |")
    lines += [
        "",
        f"{counted} of {len(datasets)} datasets: {method} above {references[0]} and "
        f"{references[1]} in at least {wins} seeds (mean Dice over each dataset's test sets)",
    ]
    return "\n".join(lines) + "\n"
