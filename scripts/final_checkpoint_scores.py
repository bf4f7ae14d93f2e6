"""How much choosing the best-validation checkpoint moves a run's test score.

A run keeps the checkpoint with the best validation Dice (checked every `trainer.val_every`
steps) and scores it on the test set; with a few validation images (8 for Kvasir-40, 20 for
BUSI-100) that choice is noisy. This scores each finished run's final weights
(checkpoints/last.pt) on the same test set and prints them beside the recorded best-checkpoint
score, one row per run, then the spread of the differences and, per method, the paired
differences to a reference method (same dataset, labels and seed) under either choice.

    python scripts/final_checkpoint_scores.py outputs/grid/ssl_screen/*/
    python scripts/final_checkpoint_scores.py --runs-csv GRID/report/runs.csv --csv final.csv
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pandas as pd
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import load_torch
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.run_data import load_run_data
from genseg_cli.engine.restore import load_run
from genseg_cli.evaluation.evaluate import evaluate_model, summarise


def final_test_dice(run_dir: Path) -> tuple[dict, float]:
    """(the run's metrics.json, the test Dice of its final weights)."""
    run = load_run(run_dir, "cpu")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    last = load_torch(run_dir / "checkpoints" / "last.pt")
    run.segmenter.load_state_dict(last["method"]["segmenter"])
    cfg = run.cfg
    data_dir = os.environ.get("GENSEG_DATA_DIR", cfg.paths.data_dir)
    data = load_run_data(
        dataset_spec(cfg.dataset.name),
        data_dir,
        int(cfg.n_labeled),
        int(cfg.seed),
        float(cfg.val_fraction),
        with_ood=False,
    )
    ev = cfg.evaluation
    with torch.no_grad():
        scores = evaluate_model(
            run.segmenter.eval(),
            data.test,
            run.spec,
            run.runtime,
            ev.resolution,
            ev.threshold,
            ev.batch_size,
        )
    return metrics, float(summarise(scores)["dice_mean"])


def paired_table(rows: pd.DataFrame, reference: str) -> Table:
    """Per method, label (dataset, n_labeled): final-weights test Dice minus the reference's,
    per seed, for the best-validation and the final weights."""
    table = Table("dataset", "n", "method", "seeds", "best-val minus ref", "final minus ref")
    table.columns[2].overflow = "fold"  # long variant labels wrap instead of being cut
    for (dataset, n), group in rows.groupby(["dataset", "n_labeled"]):
        ref = group[group.method == reference].set_index("seed")
        for method, runs in group[group.method != reference].groupby("method"):
            runs = runs.set_index("seed").sort_index()
            seeds = [s for s in runs.index if s in ref.index]
            if not seeds:
                continue
            cells = []
            for column in ("test_dice", "final_dice"):
                diff = runs.loc[seeds, column] - ref.loc[seeds, column]
                per_seed = ", ".join(f"{d:+.4f}" for d in diff)
                cells.append(
                    f"{per_seed} (mean {diff.mean():+.4f}, {(diff > 0).sum()}/{len(diff)})"
                )
            table.add_row(dataset, str(n), escape(method), ", ".join(map(str, seeds)), *cells)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="finished run folders")
    parser.add_argument(
        "--runs-csv", type=Path, help="a report's runs.csv: its runs, labelled as it labels them"
    )
    parser.add_argument("--reference", default="baseline", help="method label to pair against")
    parser.add_argument("--csv", type=Path, help="write the rows (with final_dice) here")
    args = parser.parse_args()
    if args.runs_csv:
        listed = pd.read_csv(args.runs_csv)
    else:
        listed = pd.DataFrame({"run_dir": [str(r) for r in args.runs]})
    table = Table(
        "run",
        "method",
        "seed",
        "best step",
        "best-val test Dice",
        "final test Dice",
        "final - best",
    )
    table.columns[1].overflow = "fold"
    rows, skipped = [], []
    for entry in listed.to_dict("records"):
        run_dir = Path(entry["run_dir"])
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            skipped.append(f"{run_dir.name} (no checkpoints/last.pt)")  # checkpoint_every=0
            continue
        try:
            metrics, final = final_test_dice(run_dir.resolve())
        except GensegError as err:  # e.g. a checkpoint of an older version that is not safe to load
            skipped.append(f"{run_dir.name} ({err})")
            continue
        run = metrics["run"]
        best = metrics["test"]["dice_mean"]
        method = entry.get("method", run["method"])
        rows.append(
            {
                "dataset": run["dataset"],
                "n_labeled": run["n_labeled"],
                "method": method,
                "seed": run["seed"],
                "best_step": metrics["best_step"],
                "test_dice": best,
                "final_dice": final,
                "run_dir": str(run_dir),
            }
        )
        table.add_row(
            escape(run_dir.name),
            escape(method),  # variant labels are in [brackets], which rich reads as markup
            str(run["seed"]),
            str(metrics["best_step"]),
            f"{best:.4f}",
            f"{final:.4f}",
            f"{final - best:+.4f}",
        )
    console = Console(width=220)
    console.print(table)
    if skipped:
        console.print("skipped: " + "; ".join(skipped))
    if not rows:
        return
    frame = pd.DataFrame(rows)
    spread = frame.final_dice - frame.test_dice
    console.print(
        f"final - best over {len(frame)} runs: mean {spread.mean():+.4f}, "
        f"mean |.| {spread.abs().mean():.4f}, max |.| {spread.abs().max():.4f}"
    )
    console.print(paired_table(frame, args.reference))
    if args.csv:
        frame.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
