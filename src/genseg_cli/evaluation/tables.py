"""Rich tables of evaluation results for the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text


def class_columns(summary: dict) -> list[str]:
    """Per-class names of a summary ('dice_anterior_mean' -> 'anterior'), in their order."""
    keys = [k for k in summary if k.startswith("dice_") and k.endswith("_mean")]
    return [k[len("dice_") : -len("_mean")] for k in keys if k != "dice_mean"]


def mean_std(summary: dict, key: str) -> str:
    return f"{summary[f'{key}_mean']:.4f} ± {summary[f'{key}_std']:.4f}"


def results_table(metrics: dict, title: str) -> Table:
    """One row per evaluated set (test first, then each OOD set): n, Dice and IoU mean +- std;
    multi-class results add Dice per class and HD95 (mm, mean over classes). An out-of-domain
    set absent from the data dir is a row saying so, and the caption says why and how to get it."""
    sets = {"test (in-domain)": metrics["test"]} if metrics.get("test") else {}
    sets.update({f"{k} (OOD)": v for k, v in metrics["ood"].items()})
    first = next(iter(sets.values()), {})
    classes = class_columns(first)
    with_hd95 = "hd95_mean" in first
    table = Table(title=title)
    columns = ["set", "images", "Dice", "IoU", *(f"Dice {c}" for c in classes)]
    columns += ["HD95 (mm)"] if with_hd95 else []
    for column in columns:
        table.add_column(column, justify="left" if column == "set" else "right")
    for name, s in sets.items():
        # plain Text: a set named after a user folder such as "[b]scans" is not rich markup
        cells = [Text(name), str(s["n"]), mean_std(s, "dice"), mean_std(s, "iou")]
        cells += [mean_std(s, f"dice_{c}") for c in classes]
        if with_hd95:
            cells.append(f"{s['hd95_mean']:.2f} ± {s['hd95_std']:.2f}")
        table.add_row(*cells)
    absent = metrics.get("ood_absent") or {}
    for name in absent:
        table.add_row(Text(f"{name} (OOD)"), "-", "not scored", *["-"] * (len(columns) - 3))
    if absent:
        table.caption = Text("\n".join(f"{name}: {why}" for name, why in absent.items()))
        table.caption_justify = "left"
    return table


def print_results(metrics: dict, console: Console | None = None) -> None:
    run = metrics["run"]
    title = (
        f"{run['dataset']} · {run['method']} · {run['backbone']} · n_labeled={run['n_labeled']}"
        f" · seed {run['seed']}"
    )
    if metrics.get("best_step") is not None:
        title += f" · best step {metrics['best_step']} (val Dice {metrics['val_dice']:.4f})"
    title += f" · scored at {run['resolution']} resolution"
    (console or Console()).print(results_table(metrics, title))
