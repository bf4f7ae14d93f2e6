"""Rich tables of evaluation results for the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def results_table(metrics: dict, title: str) -> Table:
    """One row per evaluated set (test first, then each OOD set): n, Dice and IoU mean +- std."""
    table = Table(title=title)
    for column in ("set", "images", "Dice", "IoU"):
        table.add_column(column, justify="left" if column == "set" else "right")
    sets = {"test (in-domain)": metrics["test"]} if metrics.get("test") else {}
    sets.update({f"{k} (OOD)": v for k, v in metrics["ood"].items()})
    for name, s in sets.items():
        table.add_row(
            name,
            str(s["n"]),
            f"{s['dice_mean']:.4f} ± {s['dice_std']:.4f}",
            f"{s['iou_mean']:.4f} ± {s['iou_std']:.4f}",
        )
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
